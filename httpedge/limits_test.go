package httpedge_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

func requireBusy(t *testing.T, r reply, status int, reason string) {
	t.Helper()
	require.Equal(t, status, r.status, "reason: %s", r.err)
	assert.Equal(t, "5", r.header.Get("Retry-After"))
	assert.Contains(t, r.err, reason)
}

func TestGlobalStreamLimit(t *testing.T) {
	s, _ := metricsServer(t, actors.Config{}, httpedge.Config{MaxStreams: 2})
	c1 := s.subscribe(t, "channel=a", nil)
	s.subscribe(t, "channel=b", nil)
	requireBusy(t, do(t, http.MethodGet, s.srv.URL+"/events?channel=c", "", nil), http.StatusServiceUnavailable, "at most 2 streams")
	c1.Close()
	refused := 1.0
	require.Eventually(t, func() bool {
		r := do(t, http.MethodGet, s.srv.URL+"/events?channel=c", "", nil)
		if r.status == http.StatusServiceUnavailable {
			refused++
		}
		return r.status == http.StatusOK
	}, wait, 5*time.Millisecond, "a slot frees when a stream ends")
	assert.Equal(t, refused, scrape(t, s.srv.URL)[`squall_limit_rejections_total{limit="streams"}`], "every refusal counted")
}

func TestPerIPStreamLimit(t *testing.T) {
	s, _ := metricsServer(t, actors.Config{}, httpedge.Config{MaxStreamsPerIP: 2})
	s.subscribe(t, "channel=a", nil)
	s.subscribe(t, "channel=a", nil)
	requireBusy(t, do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", nil), http.StatusTooManyRequests, "from your address: at most 2")
	// Without TrustProxy the header is the client's word, and ignored.
	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	assert.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, 2.0, scrape(t, s.srv.URL)[`squall_limit_rejections_total{limit="streams_per_ip"}`])
}

func TestPerIPStreamLimitBehindProxy(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{MaxStreamsPerIP: 1, TrustProxy: true})
	xff := func(v ...string) http.Header { return http.Header{"X-Forwarded-For": v} }
	s.subscribe(t, "channel=a", xff("198.51.100.1"))
	s.subscribe(t, "channel=a", xff("198.51.100.2"))
	// What the client put first is its own claim; the proxy's hop is last.
	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", xff("10.9.9.9, 198.51.100.1"))
	assert.Equal(t, http.StatusTooManyRequests, r.status, "same last hop, same client")
	r = do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", xff("198.51.100.2", "198.51.100.3"))
	assert.Equal(t, http.StatusOK, r.status, "the last header line's last hop counts")
	r = do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", xff("not an address"))
	assert.Equal(t, http.StatusOK, r.status, "an unreadable hop falls back to the peer address")
}

func TestPerIPv6Prefix(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{MaxStreamsPerIP: 1, TrustProxy: true})
	s.subscribe(t, "channel=a", http.Header{"X-Forwarded-For": {"2001:db8:1:2::1"}})
	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", http.Header{"X-Forwarded-For": {"2001:db8:1:2:ffff::7"}})
	assert.Equal(t, http.StatusTooManyRequests, r.status, "one /64 is one client")
	r = do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", http.Header{"X-Forwarded-For": {"2001:db8:1:3::1"}})
	assert.Equal(t, http.StatusOK, r.status, "another /64")
}

func TestChannelAndBodyLimits(t *testing.T) {
	s, _ := metricsServer(t, actors.Config{}, httpedge.Config{MaxChannels: 2, MaxBody: 64})
	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a&channel=b&channel=c", "", nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	assert.Contains(t, r.err, "too many channels: at most 2")
	r = do(t, http.MethodPost, s.srv.URL+"/publish", `{"channel":"a","data":"`+strings.Repeat("x", 100)+`"}`, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	assert.Contains(t, r.err, "over 64 bytes")
	got := scrape(t, s.srv.URL)
	assert.Equal(t, 1.0, got[`squall_limit_rejections_total{limit="channels"}`])
	assert.Equal(t, 1.0, got[`squall_limit_rejections_total{limit="body"}`])
}

// TestDrainClosesStreamsWithJitteredRetry: Server.Drain refuses new
// streams at once, sends every open stream a retry hint in [retry,
// 2·retry] and closes it, while publishes are still accepted.
func TestDrainClosesStreamsWithJitteredRetry(t *testing.T) {
	obs := newCloseCounter()
	s := newHubServer(t, actors.Config{Observer: obs}, httpedge.Config{})
	var clients []*client
	for range 5 {
		clients = append(clients, s.subscribe(t, "channel=a", nil))
	}
	s.mustPublish(t, "a", "before")
	for _, c := range clients {
		assert.Equal(t, "before", string(c.Next(t).Data))
	}
	const retry = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, s.edge.Drain(ctx, 100*time.Millisecond, retry))
	for _, c := range clients {
		c.RequireEnded(t)
		select {
		case r := <-c.Retries:
			assert.GreaterOrEqual(t, r, retry)
			assert.LessOrEqual(t, r, 2*retry)
		default:
			assert.Fail(t, "no retry hint")
		}
	}
	assert.Equal(t, 5, obs.count(actors.Shutdown), "counted as shutdown")
	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.Contains(t, r.err, "draining")
	r = do(t, http.MethodGet, s.srv.URL+"/readyz", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	s.mustPublish(t, "a", "publishes still land while the node drains")
	require.NoError(t, s.edge.Drain(ctx, 0, retry), "a second Drain finds nothing to do")
}
