package httpedge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/ssetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 5 * time.Second

// hubServer is a hub behind a real HTTP server.
type hubServer struct {
	hub  *actors.Hub
	edge *httpedge.Server
	srv  *httptest.Server
}

func newHubServer(t testing.TB, cfg actors.Config, edge httpedge.Config, opts ...func(*httptest.Server)) *hubServer {
	t.Helper()
	h := actorstest.NewHub(t, cfg)
	edge.Hub = h
	e := httpedge.New(edge)
	srv := httptest.NewUnstartedServer(e)
	for _, o := range opts {
		o(srv)
	}
	srv.Start()
	t.Cleanup(func() {
		// Streams end first, or Close would wait on their handlers.
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = h.Drain(ctx, 0)
		srv.Close()
	})
	return &hubServer{hub: h, edge: e, srv: srv}
}

// publish posts body and returns the status and decoded JSON answer.
func (s *hubServer) publish(t *testing.T, body string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Post(s.srv.URL+"/publish", "application/json", strings.NewReader(body))
	require.NoError(t, err, "POST /publish")
	defer resp.Body.Close()
	var out map[string]string
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &out), "answer of POST /publish is JSON: %s", raw)
	return resp.StatusCode, out
}

// mustPublish publishes and requires a 202, returning the event's id.
func (s *hubServer) mustPublish(t *testing.T, channel string, data any, extra ...string) string {
	t.Helper()
	body := map[string]any{"channel": channel, "data": data}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i]] = extra[i+1]
	}
	b, err := json.Marshal(body)
	require.NoError(t, err)
	code, out := s.publish(t, string(b))
	require.Equal(t, http.StatusAccepted, code, "publish %s: %v", b, out)
	require.NotEmpty(t, out["id"])
	return out["id"]
}

// client is one SSE subscriber reading over a real socket.
type client = ssetest.Client

func (s *hubServer) subscribe(t *testing.T, query string, header http.Header) *client {
	t.Helper()
	c, status := s.trySubscribe(t, query, header)
	require.Equal(t, http.StatusOK, status, "GET /events?%s", query)
	return c
}

func (s *hubServer) trySubscribe(t *testing.T, query string, header http.Header) (*client, int) {
	t.Helper()
	return ssetest.Open(t, s.srv.URL+"/events?"+query, ssetest.Options{Header: header})
}

// subscribeURL opens a stream at any URL, requiring a 200.
func (s *hubServer) subscribeURL(t *testing.T, url string) *client {
	t.Helper()
	return ssetest.Subscribe(t, url, ssetest.Options{})
}

// closeCounter is an actors.Observer that counts stream closes by reason.
type closeCounter struct {
	actors.Observer
	mu      sync.Mutex
	reasons map[actors.CloseReason]int
}

func newCloseCounter() *closeCounter {
	return &closeCounter{Observer: actorstest.NopObserver{}, reasons: map[actors.CloseReason]int{}}
}

func (c *closeCounter) StreamClosed(r actors.CloseReason) {
	c.mu.Lock()
	c.reasons[r]++
	c.mu.Unlock()
}

func (c *closeCounter) snapshot() map[actors.CloseReason]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.reasons)
}

func (c *closeCounter) count(r actors.CloseReason) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reasons[r]
}

var _ = assert.Equal
var _ = bytes.Equal
