package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/internal/ssetest"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost.
type testCert struct {
	certPEM, keyPEM []byte
	cn              string
}

func newTestCert(t *testing.T, cn string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		cn:      cn,
	}
}

// install writes the pair where the hub reads it, each file replaced by a
// rename as certificate tools do.
func (c testCert) install(t *testing.T, certPath, keyPath string) {
	t.Helper()
	replace(t, keyPath, c.keyPEM)
	replace(t, certPath, c.certPEM)
}

func replace(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, b, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// servedCN is the common name of the certificate a new handshake gets.
func servedCN(addr string) string {
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return "handshake failed: " + err.Error()
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// insecureH2 is an HTTP/2 client over TLS that takes the test certificates.
func insecureH2() *http.Client {
	var p http.Protocols
	p.SetHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols:       &p,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
}

// h2cClient speaks HTTP/2 with prior knowledge over plain TCP.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// runningHub is the hub run in process, as main runs it.
type runningHub struct {
	addr, base string
	client     *http.Client
	logs       string // path of its JSON log
	stop       func() // what SIGTERM does; run's result is checked
}

func runHub(t *testing.T, scheme string, client *http.Client, args ...string) *runningHub {
	t.Helper()
	addr := freeAddr(t)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() {
		ran <- run(ctx, append([]string{"--addr", addr, "--drain", "2s", "--log-format", "json"}, args...),
			func(string) string { return "" }, logFile)
	}()
	h := &runningHub{addr: addr, base: scheme + "://" + addr, client: client, logs: logFile.Name()}
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-ran:
			assert.NoError(t, err, "run")
		case <-time.After(15 * time.Second):
			assert.Fail(t, "run did not return")
		}
		client.CloseIdleConnections()
		logFile.Close()
	}
	t.Cleanup(h.stop)
	require.Eventually(t, func() bool {
		return h.status(t, "GET", "/readyz", "") == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "hub ready")
	return h
}

// status sends a request and returns its status, 0 when it failed.
func (h *runningHub) status(t *testing.T, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := h.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (h *runningHub) publish(t *testing.T, channel, data string) {
	t.Helper()
	require.Equal(t, http.StatusAccepted,
		h.status(t, "POST", "/publish", `{"channel":"`+channel+`","data":"`+data+`"}`), "publish to %s", channel)
}

func (h *runningHub) metrics(t *testing.T) string {
	t.Helper()
	resp, err := h.client.Get(h.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func (h *runningHub) subscribe(t *testing.T, query string) *ssetest.Client {
	t.Helper()
	return ssetest.Subscribe(t, h.base+"/events?"+query, ssetest.Options{HTTP: h.client})
}

func (h *runningHub) logged(t *testing.T, msg string) bool {
	t.Helper()
	b, err := os.ReadFile(h.logs)
	require.NoError(t, err)
	return strings.Contains(string(b), `"msg":"`+msg+`"`)
}

// TestTLSCertificateRotatesWithoutRestart rotates the files under a running
// hub: new handshakes get the new certificate, a stream opened before keeps
// receiving, and a broken pair keeps the certificate in use.
func TestTLSCertificateRotatesWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	newTestCert(t, "first").install(t, certPath, keyPath)
	h := runHub(t, "https", insecureH2(), "--tls-cert", certPath, "--tls-key", keyPath, "--tls-reload-interval", "20ms")
	assert.Equal(t, "first", servedCN(h.addr))
	early := h.subscribe(t, "channel=rot")
	assert.Equal(t, 2, early.Resp.ProtoMajor, "HTTP/2 over TLS")

	// A half-done rotation: a certificate without its key.
	replace(t, certPath, newTestCert(t, "orphan").certPEM)
	require.Eventually(t, func() bool { return h.logged(t, "TLS certificate not reloaded: the previous one stays in use") },
		10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "first", servedCN(h.addr), "a pair that does not load keeps the certificate in use")

	newTestCert(t, "second").install(t, certPath, keyPath)
	require.Eventually(t, func() bool { return servedCN(h.addr) == "second" }, 10*time.Second, 10*time.Millisecond,
		"new handshakes see the rotated certificate")
	h.publish(t, "rot", "after")
	assert.Equal(t, "after", string(early.Next(t).Data), "a connection from before the rotation keeps its stream")
}

// TestTLSCertificateReloadsOnSIGHUP: with polling off, SIGHUP alone reloads.
func TestTLSCertificateReloadsOnSIGHUP(t *testing.T) {
	// The test process takes SIGHUP itself too, so that a signal sent
	// before the hub listens for it cannot end the test binary.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	newTestCert(t, "before-hup").install(t, certPath, keyPath)
	h := runHub(t, "https", insecureH2(), "--tls-cert", certPath, "--tls-key", keyPath, "--tls-reload-interval", "0")
	newTestCert(t, "after-hup").install(t, certPath, keyPath)
	assert.Equal(t, "before-hup", servedCN(h.addr), "no polling: the files alone change nothing")
	require.Eventually(t, func() bool {
		if !h.logged(t, "TLS certificate reloaded") {
			require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
			return false
		}
		return true
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, "after-hup", servedCN(h.addr))
}

func TestCertReloaderRefusesABadStart(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	a, b := newTestCert(t, "a"), newTestCert(t, "b")
	replace(t, certPath, a.certPEM)
	replace(t, keyPath, b.keyPEM)
	_, err := newCertReloader(certPath, keyPath, slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, err, "private key does not match public key", "a mismatched pair at start")

	for _, args := range [][]string{{"--tls-cert", certPath}, {"--h2c", "--tls-cert", certPath, "--tls-key", keyPath}, {"--http2-max-streams", "0"}} {
		o, err := parse(args, func(string) string { return "" })
		require.NoError(t, err)
		assert.Error(t, o.serve.tls.check(), "%v", args)
	}
}

// TestStreamsOverHTTP2 runs streams over HTTP/2, with TLS and with h2c:
// heartbeats, events, the per-address stream limit and the drain behave as
// over HTTP/1.1, and many streams share one connection that the
// per-address connection limit counts once.
func TestStreamsOverHTTP2(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scheme string
		client func() *http.Client
		args   func(t *testing.T) []string
	}{
		{"TLS", "https", insecureH2, func(t *testing.T) []string {
			dir := t.TempDir()
			certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			newTestCert(t, "h2").install(t, certPath, keyPath)
			return []string{"--tls-cert", certPath, "--tls-key", keyPath}
		}},
		{"h2c", "http", h2cClient, func(*testing.T) []string { return []string{"--h2c"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const streams = 12
			args := append(tc.args(t), "--heartbeat", "200ms", "--max-conns-per-ip", "1",
				"--max-streams-per-ip", "12", "--http2-max-streams", "20")
			h := runHub(t, tc.scheme, tc.client(), args...)
			subs := make([]*ssetest.Client, streams)
			for i := range subs {
				subs[i] = h.subscribe(t, "channel=h2")
				require.Equal(t, 2, subs[i].Resp.ProtoMajor)
				assert.Empty(t, subs[i].Resp.Header.Get("Connection"), "no hop-by-hop header on HTTP/2")
			}
			assert.Equal(t, http.StatusTooManyRequests, h.status(t, "GET", "/events?channel=h2", ""),
				"the per-address stream limit counts streams, not connections")
			m := h.metrics(t)
			assert.Contains(t, m, "\nsquall_connections_open 1\n", "every stream on one connection")
			assert.Contains(t, m, "\nsquall_streams_open 12\n")

			select {
			case c := <-subs[0].Comments:
				assert.Equal(t, "keepalive", strings.TrimSpace(c))
			case <-time.After(10 * time.Second):
				require.FailNow(t, "no heartbeat over HTTP/2")
			}
			h.publish(t, "h2", "one")
			for _, s := range subs {
				assert.Equal(t, "one", string(s.Next(t).Data))
			}

			h.stop()
			for _, s := range subs {
				select {
				case <-s.Done:
				case <-time.After(10 * time.Second):
					require.FailNow(t, "the drain did not end an HTTP/2 stream")
				}
				assert.ErrorIs(t, s.Err(), io.EOF, "a clean end of stream")
				var last time.Duration
				for len(s.Retries) > 0 {
					last = <-s.Retries
				}
				assert.GreaterOrEqual(t, last, time.Second, "the drain's retry hint")
			}
		})
	}
}

// TestHTTP2StreamsPerConnectionAreBounded: a connection at
// --http2-max-streams gets no more streams, and the client's second
// connection is one more than --max-conns-per-ip allows.
func TestHTTP2StreamsPerConnectionAreBounded(t *testing.T) {
	h := runHub(t, "http", h2cClient(), "--h2c", "--http2-max-streams", "3", "--max-conns-per-ip", "1")
	subs := make([]*ssetest.Client, 3)
	for i := range subs {
		subs[i] = h.subscribe(t, "channel=bound")
	}
	assert.Zero(t, h.status(t, "GET", "/healthz", ""), "a fourth stream needs a second connection, refused at accept")
	subs[0].Close()
	var m string
	require.Eventually(t, func() bool {
		resp, err := h.client.Get(h.base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		m = string(b)
		return err == nil && resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "a closed stream frees a place on the connection")
	assert.Regexp(t, `squall_connections_refused_total\{limit="per_peer"\} [1-9]`, m)
	assert.Contains(t, m, "\nsquall_connections_open 1\n")
}

// TestTLSStreamConnectionIsNotShedAsIdle: at the connection limit the
// longest-idle connection is closed to make room; a TLS connection that
// carries a stream is busy, not idle, though the server sees it through
// its TLS wrapper.
func TestTLSStreamConnectionIsNotShedAsIdle(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	newTestCert(t, "shed").install(t, certPath, keyPath)
	const maxConns = 12
	h := runHub(t, "https", insecureH2(), "--tls-cert", certPath, "--tls-key", keyPath,
		"--max-conns", "12", "--max-conns-per-ip", "0")
	sub := h.subscribe(t, "channel=busy")
	// Twice the limit in idle connections: each one over it sheds the
	// longest idle.
	for range 2 * maxConns {
		c, err := net.Dial("tcp", h.addr)
		require.NoError(t, err)
		defer c.Close()
	}
	require.Eventually(t, func() bool {
		return strings.Contains(h.metrics(t), "\nsquall_connections_shed_total "+strconv.Itoa(maxConns+1)+"\n")
	}, 10*time.Second, 20*time.Millisecond, "idle connections shed, the stream's kept")
	h.publish(t, "busy", "still here")
	assert.Equal(t, "still here", string(sub.Next(t).Data))
}
