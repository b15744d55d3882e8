package squall_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/internal/redistest"
	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sharedRedis = redistest.SharedURL

const wait = 10 * time.Second

func newPrefix(t *testing.T) string { return redistest.Prefix(t, sharedRedis) }

// mounted is a broker under /sse/ in a mux that has a route of its own, behind
// a real HTTP server; it is shut down, then the server closed, at cleanup.
func mounted(t *testing.T, cfg squall.Config) (*squall.Broker, *httptest.Server) {
	t.Helper()
	b, err := squall.New(cfg)
	require.NoError(t, err, "squall.New")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "app") })
	mux.Handle("/sse/", b)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		assert.NoError(t, b.Shutdown(ctx), "Broker.Shutdown")
		srv.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, b.WaitReady(ctx), "WaitReady")
	return b, srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err, "GET %s", url)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// Every route of the edge, the demo page and the URLs the page itself uses
// work under the mount point; the application's own route still works;
// nothing answers outside the mount point.
func TestMountedUnderAPrefix(t *testing.T) {
	_, srv := mounted(t, squall.Config{Demo: true})
	for _, tt := range []struct {
		path string
		want int
		body string
	}{
		{"/hello", 200, "app"},
		{"/sse/healthz", 200, `"ok"`},
		{"/sse/readyz", 200, ""},
		{"/sse/metrics", 200, "squall_"},
		{"/sse/", 200, "<!doctype html>"},
		{"/sse/events", 400, `"error"`},
		{"/events", 404, ""},
		{"/healthz", 404, ""},
	} {
		code, body := get(t, srv.URL+tt.path)
		assert.Equal(t, tt.want, code, "GET %s: %s", tt.path, body)
		assert.Contains(t, body, tt.body, "GET %s", tt.path)
	}

	// The page's own URLs are relative, so they stay under /sse/.
	_, page := get(t, srv.URL+"/sse/")
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	require.NotEmpty(t, refs, "the demo page loads assets")
	for _, m := range refs {
		if strings.HasPrefix(m[1], "data:") {
			continue
		}
		assert.False(t, strings.HasPrefix(m[1], "/"), "asset %q is absolute: it would escape the mount point", m[1])
		code, _ := get(t, srv.URL+"/sse/"+m[1])
		assert.Equal(t, 200, code, "GET /sse/%s", m[1])
	}
	_, script := get(t, srv.URL+"/sse/demo/app.js")
	assert.NotRegexp(t, `['"]/(events|publish|demo)`, script, "the demo script calls the API by relative URLs")

	code, out := publish(t, srv.URL+"/sse/publish", `{"channel":"c","data":"x"}`)
	assert.Equal(t, http.StatusAccepted, code, "POST /sse/publish: %s", out)
}

func publish(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err, "POST %s", url)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// In cluster mode New starts the relay: an event published on one broker
// (over HTTP) reaches a stream on another that shares only Redis, and one
// published from Go on the second reaches a stream on the first.
func TestClusterModeWiresTheRelay(t *testing.T) {
	prefix := newPrefix(t)
	_, srvA := mounted(t, squall.Config{RedisURL: sharedRedis, RedisPrefix: prefix})
	b, srvB := mounted(t, squall.Config{RedisURL: sharedRedis, RedisPrefix: prefix})
	onB := ssetest.Subscribe(t, srvB.URL+"/sse/events?channel=orders", ssetest.Options{})
	onA := ssetest.Subscribe(t, srvA.URL+"/sse/events?channel=orders", ssetest.Options{})

	code, out := publish(t, srvA.URL+"/sse/publish", `{"channel":"orders","data":"via http","retry":0}`)
	require.Equal(t, http.StatusAccepted, code, "POST /sse/publish: %s", out)
	ev := onB.Next(t)
	assert.Equal(t, "via http", string(ev.Data))
	assert.Equal(t, sse.RetryZero, ev.Retry, `"retry": 0 crossed Redis as "retry: 0"`)
	onA.RequireNext(t, "via http")

	id, err := b.Publish(t.Context(), "orders", map[string]int{"n": 1}, sse.WithEvent("paid"))
	require.NoError(t, err, "Broker.Publish")
	for _, c := range []*ssetest.Client{onA, onB} {
		ev := c.Next(t)
		assert.Equal(t, "paid", ev.Event)
		assert.Equal(t, `{"n":1}`, string(ev.Data))
		assert.Equal(t, id, ev.ID)
	}
}

// History is given once and means the same in both modes: a stream that
// resumes gets what it missed, or, with history off, a reset.
func TestHistoryGivenOnce(t *testing.T) {
	for _, mode := range []string{"memory", "cluster"} {
		for _, history := range []int{0, -1} {
			t.Run(mode+"/history="+map[int]string{0: "default", -1: "off"}[history], func(t *testing.T) {
				cfg := squall.Config{History: history}
				if mode == "cluster" {
					cfg.RedisURL, cfg.RedisPrefix = sharedRedis, newPrefix(t)
				}
				b, srv := mounted(t, cfg)
				first, err := b.Publish(t.Context(), "h", "one")
				require.NoError(t, err)
				_, err = b.Publish(t.Context(), "h", "two")
				require.NoError(t, err)
				c := ssetest.Subscribe(t, srv.URL+"/sse/events?channel=h&lastEventId="+first, ssetest.Options{})
				ev := c.Next(t)
				if history < 0 {
					assert.Equal(t, "reset", ev.Event, "history off: the resume is refused with a reset")
					return
				}
				assert.Equal(t, "two", string(ev.Data), "the event after Last-Event-ID is replayed")
			})
		}
	}
}

// Shutdown closes open streams with a retry hint, is idempotent, and leaves
// no goroutine behind, in both modes.
func TestShutdownLeavesNothingRunning(t *testing.T) {
	for _, mode := range []string{"memory", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			cfg := squall.Config{}
			if mode == "cluster" {
				cfg.RedisURL, cfg.RedisPrefix = sharedRedis, newPrefix(t)
			}
			b, err := squall.New(cfg)
			require.NoError(t, err)
			mux := http.NewServeMux()
			mux.Handle("/sse/", b)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			require.NoError(t, b.WaitReady(ctx))
			c := ssetest.Subscribe(t, srv.URL+"/sse/events?channel=s", ssetest.Options{})

			require.NoError(t, b.Shutdown(ctx), "Shutdown")
			c.RequireEnded(t)
			assert.NoError(t, b.Shutdown(ctx), "a second Shutdown")
			assert.Error(t, b.Ready(), "not ready after Shutdown")
			code, _ := get(t, srv.URL+"/sse/readyz")
			assert.Equal(t, http.StatusServiceUnavailable, code, "readyz after Shutdown")
			srv.Close()
		})
	}
}

func TestNewRefusesABadRedisURL(t *testing.T) {
	_, err := squall.New(squall.Config{RedisURL: "http://not-redis"})
	assert.Error(t, err)
}

// The hub and edge settings of Config reach the broker it builds: the same
// knobs as the binary's flags.
func TestConfigReachesHubAndEdge(t *testing.T) {
	_, srv := mounted(t, squall.Config{HeartbeatEvent: "ping", Heartbeat: 50 * time.Millisecond,
		MaxChannels: 2, MaxStreamsPerIP: 2})
	base := srv.URL + "/sse/events?"
	code, body := get(t, base+"channel=a&channel=b&channel=c")
	assert.Equal(t, http.StatusBadRequest, code, "MaxChannels 2: %s", body)

	c := ssetest.Subscribe(t, base+"channel=a&channel=b", ssetest.Options{})
	assert.Equal(t, "ping", c.Next(t).Event, "HeartbeatEvent")
	ssetest.Subscribe(t, base+"channel=a", ssetest.Options{})
	_, code = ssetest.Open(t, base+"channel=a", ssetest.Options{})
	assert.Equal(t, http.StatusTooManyRequests, code, "MaxStreamsPerIP 2")

	_, err := squall.New(squall.Config{HeartbeatEvent: "a\nb"})
	assert.ErrorContains(t, err, "HeartbeatEvent", "a name the wire cannot carry is an error, not a panic")
}

// Each hub setting of Config reaches the hub as given.
func TestConfigHubSettings(t *testing.T) {
	b, _ := mounted(t, squall.Config{WriteTimeout: 3 * time.Second, FlushGap: -1, FixedFlushGap: true,
		MaxQueueFrames: 7, MaxQueueBytes: 9000, Overflow: actors.DropOldest, HistoryBytes: 1 << 10,
		HistoryBudget: 1 << 20, PublishPatience: time.Minute})
	got := b.Hub().Config()
	assert.Equal(t, 3*time.Second, got.WriteTimeout)
	assert.Equal(t, time.Duration(-1), got.FlushGap)
	assert.True(t, got.FixedFlushGap)
	assert.Equal(t, 7, got.MaxQueueFrames)
	assert.Equal(t, 9000, got.MaxQueueBytes)
	assert.Equal(t, actors.DropOldest, got.Overflow)
	assert.Equal(t, 1<<10, got.HistoryBytes)
	assert.Equal(t, int64(1<<20), got.HistoryBudget)
	assert.Equal(t, time.Minute, got.PublishPatience)
}

// RedisInterest all: the node receives every event of the prefix, even for
// channels none of its streams is on; by default it receives none of those.
func TestConfigRedisInterest(t *testing.T) {
	prefix := newPrefix(t)
	all, _ := mounted(t, squall.Config{RedisURL: sharedRedis, RedisPrefix: prefix, RedisInterest: redisrelay.InterestAll})
	some, _ := mounted(t, squall.Config{RedisURL: sharedRedis, RedisPrefix: prefix})
	for range 5 {
		_, err := some.Publish(t.Context(), "nobody-here", "x")
		require.NoError(t, err)
	}
	received := func(b *squall.Broker) float64 {
		mfs, err := b.Registry().Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "squall_relay_received_messages_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}
	require.Eventually(t, func() bool { return received(all) == 5 }, wait, 10*time.Millisecond, "InterestAll receives the 5")
	assert.Equal(t, 0.0, received(some), "per-channel interest receives none of them")
}
