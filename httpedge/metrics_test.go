package httpedge_test

import (
	"bufio"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/ssetest"
)

// scrape reads /metrics over HTTP, as Prometheus does, into
// `name{labels}` → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, "a sample line: %q", line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, "value of %q", line)
		out[line[:i]] = v
	}
	require.NoError(t, sc.Err())
	return out
}

// metricsServer is a hub whose Observer and edge share one Metrics.
func metricsServer(t *testing.T, cfg actors.Config, edge httpedge.Config) (*hubServer, *httpedge.Metrics) {
	t.Helper()
	m := httpedge.NewMetrics()
	cfg.Observer = m
	edge.Metrics = m
	return newHubServer(t, cfg, edge), m
}

// requireMetrics waits until every series in want has its value: delivery
// and closes are asynchronous.
func requireMetrics(t *testing.T, base string, want map[string]float64) {
	t.Helper()
	var got map[string]float64
	ok := assert.Eventually(t, func() bool {
		got = scrape(t, base)
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}, wait, 5*time.Millisecond)
	if !ok {
		for k, v := range want {
			assert.Equal(t, v, got[k], k)
		}
		t.FailNow()
	}
}

func TestMetricsScenario(t *testing.T) {
	s, _ := metricsServer(t, actors.Config{Heartbeat: -1}, httpedge.Config{})
	c1 := s.subscribe(t, "channel=m", nil)
	c2 := s.subscribe(t, "channel=m", nil)
	var ids []string
	for i := range 3 {
		ids = append(ids, s.mustPublish(t, "m", i))
	}
	c1.NextN(t, 3)
	c2.NextN(t, 3)
	c1.Close()
	requireMetrics(t, s.srv.URL, map[string]float64{
		"squall_streams_open":                              1,
		"squall_channels":                                  1,
		"squall_events_published_total":                    3,
		"squall_events_delivered_total":                    6,
		`squall_disconnects_total{reason="client_gone"}`:   1,
		`squall_disconnects_total{reason="slow_consumer"}`: 0,
		"squall_frames_dropped_total":                      0,
		`squall_replay_total{result="hit"}`:                0,
		`squall_replay_total{result="miss"}`:               0,
		"squall_relay_up":                                  1,
	})
	got := scrape(t, s.srv.URL)
	flushes := got["squall_publish_to_flush_seconds_count"]
	assert.GreaterOrEqual(t, flushes, 2.0, "at least one flush per stream")
	assert.LessOrEqual(t, flushes, 6.0, "at most one flush per event per stream")
	assert.Equal(t, flushes, got[`squall_publish_to_flush_seconds_bucket{le="+Inf"}`])
	for _, r := range actors.CloseReasons() {
		assert.Contains(t, got, `squall_disconnects_total{reason="`+r.String()+`"}`, "declared before it happens")
	}
	for _, l := range []string{"streams", "streams_per_ip", "channels", "body"} {
		assert.Contains(t, got, `squall_limit_rejections_total{limit="`+l+`"}`)
	}
	assert.Contains(t, got, `squall_auth_failures_total{code="401"}`)
	assert.Positive(t, got["go_goroutines"], "Go runtime collector")
	assert.Positive(t, got["process_open_fds"], "process collector")

	// Resumes: from a retained id (hit, 2 events replayed) and from an
	// unknown one (miss, a reset event).
	c3 := s.subscribe(t, "channel=m", http.Header{"Last-Event-ID": {ids[0]}})
	assert.Equal(t, []string{"1", "2"}, ssetest.Data(c3.NextN(t, 2)))
	c4 := s.subscribe(t, "channel=m", http.Header{"Last-Event-ID": {"nope"}})
	assert.Equal(t, "reset", c4.Next(t).Event)
	c2.Close()
	requireMetrics(t, s.srv.URL, map[string]float64{
		"squall_streams_open":                            2,
		`squall_replay_total{result="hit"}`:              1,
		`squall_replay_total{result="miss"}`:             1,
		`squall_disconnects_total{reason="client_gone"}`: 2,
	})
}

func TestMetricsDropsAndRelay(t *testing.T) {
	s, m := metricsServer(t, actors.Config{Overflow: actors.DropNewest, MaxQueueFrames: 1}, httpedge.Config{})
	// Observer calls are the hub's; drive them directly for what a real
	// socket cannot force deterministically.
	m.Dropped(4)
	m.StreamOpened()
	m.StreamClosed(actors.CloseReason(99))
	requireMetrics(t, s.srv.URL, map[string]float64{
		"squall_frames_dropped_total":                4,
		`squall_disconnects_total{reason="unknown"}`: 1,
		"squall_relay_up":                            1,
	})
	var up atomic.Bool
	m.SetRelayReady(func() error {
		if up.Load() {
			return nil
		}
		return errors.New("relay: not subscribed")
	})
	requireMetrics(t, s.srv.URL, map[string]float64{"squall_relay_up": 0})
	up.Store(true)
	requireMetrics(t, s.srv.URL, map[string]float64{"squall_relay_up": 1})
	m.SetRelayReady(nil)
	requireMetrics(t, s.srv.URL, map[string]float64{"squall_relay_up": 1})
}

func TestMetricsRegistriesAreIndependent(t *testing.T) {
	a, b := httpedge.NewMetrics(), httpedge.NewMetrics()
	a.Published("x")
	fa, err := a.Registry().Gather()
	require.NoError(t, err)
	fb, err := b.Registry().Gather()
	require.NoError(t, err)
	value := func(fams []*dto.MetricFamily, name string) float64 {
		for _, f := range fams {
			if f.GetName() == name {
				return f.GetMetric()[0].GetCounter().GetValue()
			}
		}
		require.FailNow(t, "no "+name)
		return 0
	}
	assert.Equal(t, 1.0, value(fa, "squall_events_published_total"))
	assert.Equal(t, 0.0, value(fb, "squall_events_published_total"))
}

// TestObserverAllocatesNothing: the observer runs per publish and per
// flush on actor goroutines.
func TestObserverAllocatesNothing(t *testing.T) {
	m := httpedge.NewMetrics()
	calls := map[string]func(){
		"StreamOpened":    m.StreamOpened,
		"StreamClosed":    func() { m.StreamClosed(actors.SlowConsumer) },
		"Published":       func() { m.Published("orders") },
		"Flushed":         func() { m.Flushed(12, 3*time.Millisecond) },
		"Dropped":         func() { m.Dropped(2) },
		"Resumed":         func() { m.Resumed(true) },
		"ChannelsChanged": func() { m.ChannelsChanged(7) },
	}
	for name, f := range calls {
		t.Run(name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(1000, f))
		})
	}
}

func BenchmarkObserverFlushed(b *testing.B) {
	m := httpedge.NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.Published("orders")
		m.Flushed(8, 250*time.Microsecond)
	}
}
