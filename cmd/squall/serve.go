package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/squall-sse/squall/httpedge"
)

// serveOptions are the flags of the HTTP server itself: how long a client
// may take over a request, how long an idle keep-alive connection is kept,
// and how many connections may be open at once. They bound what a client
// that never finishes (slowloris) or never leaves can hold.
type serveOptions struct {
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	idleTimeout       time.Duration
	maxConns          autoInt
	maxConnsPerIP     autoInt
	tls               tlsOptions
	publish           publishRateOptions
}

func (s *serveOptions) register(fs *flag.FlagSet) {
	fs.DurationVar(&s.readHeaderTimeout, "read-header-timeout", 10*time.Second,
		"time a client has to send a request's headers; 0 uses --read-timeout")
	fs.DurationVar(&s.readTimeout, "read-timeout", 30*time.Second,
		"time a client has to send a whole request, body included (a publish); streams are exempt; 0 means no limit")
	fs.DurationVar(&s.idleTimeout, "idle-timeout", 75*time.Second,
		"how long a keep-alive connection waits for its next request (longer than a proxy's, nginx and AWS ALB: 60s); 0 uses --read-timeout")
	s.maxConns = autoInt{auto: true}
	fs.Var(&s.maxConns, "max-conns",
		`client connections open at once; "auto": the open-file limit minus a reserve; 0 means no limit`)
	s.maxConnsPerIP = autoInt{auto: true}
	fs.Var(&s.maxConnsPerIP, "max-conns-per-ip",
		`connections open at once from one peer address, checked at accept; "auto": --max-conns / 8, none with --trust-proxy (the peer is the proxy); 0 means no limit`)
	s.tls.register(fs)
	s.publish.register(fs)
}

// publishRateOptions are the flags of the publish rate limits. They are
// off by default: the usual publisher is the application's backend, one
// or a few addresses and often one service token publishing for every
// user, which any default low enough to stop abuse would throttle; and
// behind a proxy without --trust-proxy every client has the proxy's
// address. Turn them on when browsers or other untrusted clients publish.
type publishRateOptions struct {
	perSub, perIP     float64
	burstSub, burstIP int
	keys              int
}

func (p *publishRateOptions) register(fs *flag.FlagSet) {
	fs.Float64Var(&p.perSub, "publish-rate-per-sub", 0, "publishes per second per token subject (the sub claim), 429 above; 0 means no limit")
	fs.IntVar(&p.burstSub, "publish-burst-per-sub", 0, "publishes one subject may send at once; 0 means the rate rounded up")
	fs.Float64Var(&p.perIP, "publish-rate-per-ip", 0, "publishes per second per client address (the forwarded one with --trust-proxy), 429 above; 0 means no limit")
	fs.IntVar(&p.burstIP, "publish-burst-per-ip", 0, "publishes one address may send at once; 0 means the rate rounded up")
	fs.IntVar(&p.keys, "publish-rate-keys", httpedge.DefaultRateKeys, "subjects, and separately addresses, tracked at once by the publish rate limits; past it the least recently seen is forgotten")
}

// limits returns the publish limits the flags ask for.
func (p *publishRateOptions) limits() (httpedge.PublishLimits, error) {
	if p.perSub < 0 || p.perIP < 0 || p.burstSub < 0 || p.burstIP < 0 || p.keys < 1 {
		return httpedge.PublishLimits{}, errors.New("--publish-rate-*, --publish-burst-*: want 0 (no limit) or more; --publish-rate-keys: at least 1")
	}
	return httpedge.PublishLimits{
		PerSubject: httpedge.Rate{PerSecond: p.perSub, Burst: p.burstSub},
		PerAddress: httpedge.Rate{PerSecond: p.perIP, Burst: p.burstIP},
		MaxKeys:    p.keys,
	}, nil
}

// autoInt is a flag that is "auto" or a non-negative integer.
type autoInt struct {
	n    int
	auto bool
}

func (a *autoInt) String() string {
	if a.auto {
		return "auto"
	}
	return strconv.Itoa(a.n)
}

func (a *autoInt) Set(v string) error {
	if v == "auto" {
		*a = autoInt{auto: true}
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf(`want "auto" or a count, 0 for no limit: %q`, v)
	}
	*a = autoInt{n: n}
	return nil
}

// fdReserve is how many of the open-file limit are kept from clients for
// the rest of the process: the listener, Redis connections (go-redis's pool
// is 10 per CPU), the log, /proc reads of the process collector.
func fdReserve(limit int) int {
	return min(max(64, limit/10), 1024, limit/2)
}

// connLimits works out the connection limits from the flags and the
// process's open-file limit.
func (s *serveOptions) connLimits(trustProxy bool) (httpedge.ConnLimits, int) {
	var l httpedge.ConnLimits
	files := 0
	if n, ok := fdLimit(); ok {
		files = int(n)
	}
	switch {
	case !s.maxConns.auto:
		l.Max = s.maxConns.n
	case files > 0:
		l.Max = files - fdReserve(files)
	}
	switch {
	case !s.maxConnsPerIP.auto:
		l.MaxPerPeer = s.maxConnsPerIP.n
	case trustProxy:
		// Every connection comes from the proxy: a limit per peer would
		// be a second, smaller global one. Limit per client at the proxy
		// (nginx: limit_conn); --max-streams-per-ip still counts the
		// forwarded address.
	case l.Max > 0:
		l.MaxPerPeer = max(1, l.Max/8)
	}
	return l, files
}

// streamRoom is how many streams fit under a connection limit while leaving
// room for publishes, probes and scrapes: at the limit every connection
// would be busy, and new ones, /healthz included, would be turned away.
func streamRoom(maxConns int) int { return maxConns - max(8, maxConns/10) }

// fitStreams lowers the stream limit under the connection limit, so that a
// crowd of streams is answered 503 (which a client understands) before
// connections are closed at accept. maxStreams is negative for no limit.
func fitStreams(maxStreams int, l httpedge.ConnLimits, log *slog.Logger) int {
	if l.Max <= 0 {
		return maxStreams
	}
	room := streamRoom(l.Max)
	if maxStreams < 0 || maxStreams > room {
		log.Info("max streams lowered under the connection limit", "max_streams", room, "max_conns", l.Max)
		return max(1, room)
	}
	return maxStreams
}

// server returns the hub's http.Server, serving edge on connections that
// lim admits.
func (s *serveOptions) server(edge http.Handler, lim *httpedge.ConnLimiter, log *slog.Logger) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	// Over TLS, HTTP/2 is offered by ALPN; in plaintext only with --h2c
	// (prior knowledge: what proxies speak to a backend; Go's server does
	// not take the Upgrade: h2c dance).
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(s.tls.h2c)
	return &http.Server{
		Protocols: &protocols,
		// Every SSE stream is an HTTP/2 stream: this bounds what one
		// connection holds, as --max-conns-per-ip bounds connections.
		HTTP2:   &http.HTTP2Config{MaxConcurrentStreams: s.tls.h2MaxStreams},
		Handler: edge,
		// A stream clears its read deadline once admitted (httpedge), and
		// writes with a deadline per flush: no WriteTimeout here, which
		// would cut every stream after it.
		ReadHeaderTimeout: s.readHeaderTimeout,
		ReadTimeout:       s.readTimeout,
		IdleTimeout:       s.idleTimeout,
		ConnState:         func(c net.Conn, st http.ConnState) { lim.ConnState(c, st) },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serve serves srv on ln until srv is shut down: over TLS with HTTP/2 when
// a certificate is configured, with the certificate reloaded meanwhile.
func (s *serveOptions) serve(srv *http.Server, ln net.Listener, log *slog.Logger) error {
	if err := s.tls.check(); err != nil {
		return err
	}
	if s.tls.certFile == "" {
		return srv.Serve(ln)
	}
	certs, err := newCertReloader(s.tls.certFile, s.tls.keyFile, log)
	if err != nil {
		return err
	}
	srv.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		certs.watch(ctx, s.tls.reloadEvery)
	}()
	defer func() {
		cancel()
		<-watched
	}()
	return srv.ServeTLS(ln, "", "")
}
