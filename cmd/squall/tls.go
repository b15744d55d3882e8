package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// tlsOptions are the flags of TLS and HTTP/2.
type tlsOptions struct {
	certFile, keyFile string
	reloadEvery       time.Duration
	h2c               bool
	h2MaxStreams      int
}

func (t *tlsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&t.certFile, "tls-cert", "", "PEM certificate chain; with --tls-key serves HTTPS with HTTP/2, reloaded on SIGHUP and when the files change")
	fs.StringVar(&t.keyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.DurationVar(&t.reloadEvery, "tls-reload-interval", 5*time.Second,
		"how often the certificate files are checked for a change (a rotation); 0 reloads on SIGHUP only")
	fs.BoolVar(&t.h2c, "h2c", false, "also serve HTTP/2 without TLS (prior knowledge), for a proxy that speaks h2c to the hub")
	fs.IntVar(&t.h2MaxStreams, "http2-max-streams", 100,
		"concurrent streams one HTTP/2 connection may open (SSE streams, publishes and probes together)")
}

func (t *tlsOptions) check() error {
	if (t.certFile == "") != (t.keyFile == "") {
		return errors.New("--tls-cert and --tls-key: give both or neither")
	}
	if t.h2c && t.certFile != "" {
		return errors.New("--h2c is for plaintext behind a proxy: with --tls-cert, HTTP/2 is negotiated by TLS")
	}
	if t.h2MaxStreams < 1 {
		return fmt.Errorf("--http2-max-streams %d: want at least 1", t.h2MaxStreams)
	}
	if t.reloadEvery < 0 {
		return errors.New("--tls-reload-interval: want 0 or more")
	}
	return nil
}

// certReloader holds the serving certificate and swaps it when the files
// change, so that a certificate rotates without a restart. A pair that
// does not load (a half-written rotation, a key that does not match) keeps
// the certificate in use and is logged; the next change tries again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	cert atomic.Pointer[tls.Certificate]
	seen [2]fileStamp // of the files at the last load attempt; owned by watch
}

// fileStamp tells a changed file from an unchanged one without reading it.
// os.Stat follows symlinks, so a Kubernetes secret's atomic swap of its
// ..data link shows as a change of the target.
type fileStamp struct {
	mod  time.Time
	size int64
	err  bool
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: true}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}
}

// newCertReloader loads the pair once: a hub that cannot serve its
// certificate at start does not start.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	c.seen = [2]fileStamp{stamp(certFile), stamp(keyFile)}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	c.cert.Store(&cert)
	return nil
}

// reload loads the pair again, keeping the one in use when it fails.
func (c *certReloader) reload(why string) {
	if err := c.load(); err != nil {
		c.log.Error("TLS certificate not reloaded: the previous one stays in use", "trigger", why, "err", err)
		return
	}
	attrs := []any{"trigger", why}
	if leaf := c.cert.Load().Leaf; leaf != nil { // nil with GODEBUG=x509keypairleaf=0
		attrs = append(attrs, "expires", leaf.NotAfter)
	}
	c.log.Info("TLS certificate reloaded", attrs...)
}

// GetCertificate is tls.Config.GetCertificate: every handshake takes the
// certificate current at that moment; connections already open keep theirs.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}

// changed reports whether either file changed since the last check.
func (c *certReloader) changed() bool {
	now := [2]fileStamp{stamp(c.certFile), stamp(c.keyFile)}
	if now == c.seen {
		return false
	}
	c.seen = now
	return true
}

// watch reloads on SIGHUP and, every interval (0: never), when a file
// changed, until ctx ends.
func (c *certReloader) watch(ctx context.Context, every time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			c.changed() // a later poll must not reload the same files again
			c.reload("SIGHUP")
		case <-tick:
			if c.changed() {
				c.reload("file change")
			}
		}
	}
}
