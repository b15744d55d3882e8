package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/client"
)

// testTimeout bounds every wait in these tests, so that a bug fails the
// test instead of hanging it. Nothing is timed against it.
const testTimeout = 10 * time.Second

// server is an httptest server whose handler knows which connection it
// serves (n counts requests from 1), so a test can script each one.
type server struct {
	*httptest.Server
	requests atomic.Int64
}

// errTestEnd cancels the requests that are still held when a test ends.
var errTestEnd = errors.New("test ended")

// newServer starts a server for h. The context of each request it gets
// also ends when the test does, so that a handler that holds a response
// open never keeps the server's Close waiting.
func newServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *server {
	t.Helper()
	return newServerTB(t, h)
}

func newServerTB(t testing.TB, h func(w http.ResponseWriter, r *http.Request, n int)) *server {
	t.Helper()
	end, endCancel := context.WithCancel(context.Background())
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		stop := context.AfterFunc(end, func() { cancel(errTestEnd) })
		defer stop()
		h(w, r.WithContext(ctx), int(s.requests.Add(1)))
	}))
	// Registered first, so it runs after the test's own cleanups (a
	// Stream's Close in particular).
	t.Cleanup(func() {
		endCancel()
		s.Close()
	})
	return s
}

// open sends the headers of an event stream.
func open(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// send writes each frame and flushes it on its own, so each one leaves as
// its own TCP write.
func send(w http.ResponseWriter, frames ...string) {
	for _, f := range frames {
		_, _ = io.WriteString(w, f)
		w.(http.Flusher).Flush()
	}
}

// hold keeps a response open until the client goes away or the test ends.
// It reports whether the client went away.
func hold(r *http.Request) bool {
	<-r.Context().Done()
	return !errors.Is(context.Cause(r.Context()), errTestEnd)
}

func fail(w http.ResponseWriter, status int, body string, header ...string) {
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	if body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// recorder keeps what the hooks reported, with the time of each call.
type recorder struct {
	mu          sync.Mutex
	connects    []client.ConnectInfo
	connectAt   []time.Time
	disconnects []client.DisconnectInfo
	disconnAt   []time.Time
	onConnect   func(client.ConnectInfo) // optional extra action
}

func (r *recorder) hook(cfg client.Config) client.Config {
	cfg.OnConnect = func(info client.ConnectInfo) {
		r.mu.Lock()
		r.connects = append(r.connects, info)
		r.connectAt = append(r.connectAt, time.Now())
		f := r.onConnect
		r.mu.Unlock()
		if f != nil {
			f(info)
		}
	}
	cfg.OnDisconnect = func(info client.DisconnectInfo) {
		r.mu.Lock()
		r.disconnects = append(r.disconnects, info)
		r.disconnAt = append(r.disconnAt, time.Now())
		r.mu.Unlock()
	}
	return cfg
}

func (r *recorder) snapshot() ([]client.ConnectInfo, []client.DisconnectInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.ConnectInfo(nil), r.connects...), append([]client.DisconnectInfo(nil), r.disconnects...)
}

// connect opens a Stream that the test closes at cleanup.
func connect(t *testing.T, url string, cfg client.Config) *client.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := client.Connect(ctx, url, cfg)
	require.NoError(t, err, "Connect")
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fast is a Config that retries at once and without jitter, for tests
// that do not look at the waits.
func fast() client.Config {
	return client.Config{InitialRetry: time.Millisecond, Jitter: -1}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
