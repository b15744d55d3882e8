package httpedge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/sse"
)

// liveHeap is the heap in use once garbage is collected.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// progress is an Observer that counts resumes and written events.
type progress struct {
	actors.Observer
	resumed atomic.Int64
	written atomic.Int64
}

func (p *progress) Resumed(bool)                   { p.resumed.Add(1) }
func (p *progress) Flushed(n int, _ time.Duration) { p.written.Add(int64(n)) }

// payload is data of about size bytes that starts with "channel/seq/".
func payload(channel string, seq, size int) string {
	head := fmt.Sprintf("%s/%d/", channel, seq)
	return head + strings.Repeat("x", max(size-len(head), 0))
}

// Class 4 of issue 14: a client that resumes on channels with long
// histories and then stops reading holds no more than its stream's bound,
// not its whole replay; a client that reads gets the whole replay and the
// live events that follow, in order, once each.
func TestHostileUnboundedReplay(t *testing.T) {
	const (
		channels  = 16
		events    = 1000
		size      = 2 << 10
		resumers  = 20
		bound     = 256 << 10 // the stream bound, MaxQueueBytes
		allowance = 2 << 20   // sockets, goroutines and buffers of 20 connections
	)
	obs := &progress{Observer: actorstest.NopObserver{}}
	// History has room for the live events published during the reader's
	// replay: a replay that the ring turns over is cut (slow consumer).
	s := newHubServer(t, actors.Config{MaxQueueBytes: bound, WriteTimeout: time.Minute, Heartbeat: -1, Observer: obs, History: 2 * events},
		httpedge.Config{MaxChannels: channels}, smallSendBuffers)
	names := make([]string, channels)
	for c := range names {
		names[c] = fmt.Sprint("r", c)
		for i := range events {
			_, err := s.hub.Publish(context.Background(), names[c], sse.Event{ID: fmt.Sprint("e", i), Data: []byte(payload(names[c], i, size))})
			require.NoError(t, err)
		}
	}
	query := "channel=" + strings.Join(names, "&channel=")
	before := liveHeap()

	addr := strings.TrimPrefix(s.srv.URL, "http://")
	for range resumers {
		dialStalled(t, addr, "/events?"+query, "Last-Event-ID: e0")
	}
	// Settled: every channel of every stream resumed, and nothing more
	// gets written (the sockets are full).
	var last int64 = -1
	require.Eventually(t, func() bool {
		w := obs.written.Load()
		settled := obs.resumed.Load() == resumers*channels && w == last
		last = w
		return settled
	}, 20*time.Second, 200*time.Millisecond, "stalled resumers settle")
	after := liveHeap()
	growth := int64(after) - int64(before)
	t.Logf("history %d channels x %d x %d B; %d stalled resumers: heap %d KB -> %d KB, %+d KB in all, %d KB per stalled resumer (stream bound %d KB); %d events written before the sockets filled",
		channels, events, size, resumers, before>>10, after>>10, growth>>10, growth/resumers>>10, bound>>10, obs.written.Load())
	assert.Less(t, growth, int64(resumers*bound+allowance), "stalled resumers hold more than their stream bound")

	// A client that reads gets everything after e0 on each channel, then
	// what is published during its replay, in order and once.
	c := s.subscribe(t, "channel=r0&channel=r1&channel=r2&channel=r3", resumeHeader("e0"))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := events; i < events+20; i++ {
			for _, ch := range names[:4] {
				_, err := s.hub.Publish(context.Background(), ch, sse.Event{ID: fmt.Sprint("e", i), Data: []byte(payload(ch, i, 100))})
				assert.NoError(t, err)
			}
		}
	}()
	next := map[string]int{"r0": 1, "r1": 1, "r2": 1, "r3": 1}
	for range 4 * (events - 1 + 20) {
		var ev sse.Event
		select {
		case ev = <-c.Events:
		case <-time.After(wait):
			require.FailNow(t, "no event within 5s", "got so far: %v", next)
		}
		ch, rest, _ := strings.Cut(string(ev.Data), "/")
		seq, _, _ := strings.Cut(rest, "/")
		require.Equal(t, fmt.Sprint(next[ch]), seq, "channel %s in order, no gap, no duplicate", ch)
		next[ch]++
	}
	wg.Wait()
	for _, ch := range names[:4] {
		assert.Equal(t, events+20, next[ch], "channel %s complete", ch)
	}
}

// requireReset reads a stream's first event and requires a reset.
func requireReset(t *testing.T, c *client, reason string) {
	t.Helper()
	ev := c.Next(t)
	require.Equal(t, "reset", ev.Event, "a reset first, got %q", ev.Data)
	assert.Contains(t, string(ev.Data), reason)
}

// Class 5 of issue 14: history memory is bounded in bytes per channel and
// in all, oldest first, evictions are counted, and a resume into what was
// evicted gets a reset.
func TestHostileHistoryMemory(t *testing.T) {
	t.Run("one channel of 1 MB events", func(t *testing.T) {
		const perChannel = 4 << 20 // the default HistoryBytes
		s, _ := metricsServer(t, actors.Config{Heartbeat: -1}, httpedge.Config{})
		before := liveHeap()
		// 300 as in the issue; 100 (still 25 times the bound) under the
		// race detector, which makes each megabyte copied cost 30 ms.
		events := 300
		if raceOn {
			events = 100
		}
		data := []byte(strings.Repeat("y", 1_000_000))
		var ids []string
		for range events {
			id, err := s.hub.Publish(context.Background(), "big", sse.Event{Data: data})
			require.NoError(t, err)
			ids = append(ids, id)
		}
		after := liveHeap()
		m := scrape(t, s.srv.URL)
		t.Logf("%d x 1 MB on one channel: heap %+d KB; squall_history_bytes %.0f; evicted by bytes %.0f",
			events, (int64(after)-int64(before))>>10, m["squall_history_bytes"], m[`squall_history_evictions_total{reason="bytes"}`])
		assert.Less(t, int64(after)-int64(before), int64(perChannel+1<<20), "the channel's history passed its byte bound")
		assert.LessOrEqual(t, m["squall_history_bytes"], float64(perChannel+4<<10))
		assert.GreaterOrEqual(t, m[`squall_history_evictions_total{reason="bytes"}`], float64(events-4))

		requireReset(t, s.subscribe(t, "channel=big", resumeHeader(ids[0])), "older than the retained history")
		c := s.subscribe(t, "channel=big", resumeHeader(ids[events-3]))
		assert.Equal(t, ids[events-2], c.Next(t).ID, "what is retained replays")
		assert.Equal(t, ids[events-1], c.Next(t).ID)
	})

	t.Run("many one-event channels under the budget", func(t *testing.T) {
		const (
			budget   = 4 << 20
			channels = 20_000
		)
		s, _ := metricsServer(t, actors.Config{Heartbeat: -1, HistoryBudget: budget}, httpedge.Config{})
		before := liveHeap()
		ids := make([]string, channels)
		for i := range channels {
			id, err := s.hub.Publish(context.Background(), fmt.Sprint("one-", i), sse.Event{Data: []byte(payload("one", i, 500))})
			require.NoError(t, err)
			ids[i] = id
		}
		var m map[string]float64
		require.Eventually(t, func() bool {
			m = scrape(t, s.srv.URL)
			return m[`squall_history_evictions_total{reason="budget"}`] > 0 && m["squall_history_bytes"] <= budget &&
				m["squall_channels"] < channels/2
		}, wait, 10*time.Millisecond, "the budget evicts and evicted channels stop")
		after := liveHeap()
		live := int64(m["squall_channels"])
		t.Logf("%d channels of one 500 B event, budget %d KB: heap %+d KB; squall_history_bytes %.0f; %d channels left, %.0f events evicted by budget; %d B of heap per channel left",
			channels, budget>>10, (int64(after)-int64(before))>>10, m["squall_history_bytes"], live,
			m[`squall_history_evictions_total{reason="budget"}`], (int64(after)-int64(before))/max(live, 1))
		// Beyond the budget, the heap keeps about 170 B for every channel
		// actor ever created (9.1 MB after 20,000, 15.8 MB after 60,000):
		// not history; allowed for here with the noise of other tests
		// (2 x budget + 256 B per channel). Without the budget the 20,000
		// channels hold 53 MB (2.7 KB each).
		assert.Less(t, int64(after)-int64(before), int64(2*budget+channels*256), "the histories passed the budget")

		// Oldest first: the first channels lost their event, the last kept it.
		requireReset(t, s.subscribe(t, "channel=one-0", resumeHeader(ids[0])), "retained history")
		c := s.subscribe(t, fmt.Sprint("channel=one-", channels-1), resumeHeader(ids[channels-1]))
		id := s.mustPublish(t, fmt.Sprint("one-", channels-1), "live")
		assert.Equal(t, id, c.Next(t).ID, "the newest channel resumed without a reset")
	})
}

// Class 8 of issue 14, memory mode: a publisher that reuses an id makes the
// most recent occurrence the resume point, and nothing at or before the
// client's last event is sent again.
func TestHostileAmbiguousIDs(t *testing.T) {
	s := newHubServer(t, actors.Config{Heartbeat: -1}, httpedge.Config{})
	for i, id := range []string{"e1", "e2", "e3", "e4", "e5", "e2"} {
		s.mustPublish(t, "amb", fmt.Sprint(i), "id", id)
	}
	tests := []struct {
		lastID string
		want   []string // data of the replay, then "live"
	}{
		{"e4", []string{"4", "5"}},        // e5, then the new e2
		{"e2", []string{"live after e4"}}, // the latest e2: only what followed it
		{"e1", []string{"1", "2", "3", "4", "5"}},
	}
	for _, tt := range tests {
		t.Run("after "+tt.lastID, func(t *testing.T) {
			c := s.subscribe(t, "channel=amb", resumeHeader(tt.lastID))
			// Each case's live event goes to history too: the next case
			// replays it after the reused e2.
			s.mustPublish(t, "amb", "live after "+tt.lastID, "id", "live-"+tt.lastID)
			want := append(append([]string(nil), tt.want...), "live after "+tt.lastID)
			if tt.lastID == "e1" {
				want = []string{"1", "2", "3", "4", "5", "live after e4", "live after e2", "live after e1"}
			}
			assert.Equal(t, want, ssetest.Data(c.NextN(t, len(want))))
		})
	}
}

// Class 7 of issue 14, memory mode: a publish retried with the same
// Idempotency-Key is answered with the first one's id and delivered once.
func TestHostileIdempotencyKey(t *testing.T) {
	s := newHubServer(t, actors.Config{Heartbeat: -1, History: 3}, httpedge.Config{})
	c := s.subscribe(t, "channel=k", nil)
	post := func(key, data string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/publish", strings.NewReader(fmt.Sprintf(`{"channel":"k","data":%q}`, data)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	code, first := post("order-1", "a")
	require.Equal(t, http.StatusAccepted, code)
	assert.Nil(t, first["duplicate"])
	code, again := post("order-1", "a (retried)")
	require.Equal(t, http.StatusAccepted, code)
	assert.Equal(t, first["id"], again["id"], "the retry answers the first event's id")
	assert.Equal(t, true, again["duplicate"])
	code, other := post("order-2", "b")
	require.Equal(t, http.StatusAccepted, code)
	assert.NotEqual(t, first["id"], other["id"])
	assert.Equal(t, []string{"a", "b"}, ssetest.Data(c.NextN(t, 2)), "the retry was not delivered")

	// A key is remembered while its event is in the history (here, the
	// last 3 events): once evicted, the key is new again.
	post("", "c")
	post("", "d")
	code, late := post("order-1", "a (much later)")
	require.Equal(t, http.StatusAccepted, code)
	assert.Nil(t, late["duplicate"], "the key's event left the history")
	assert.NotEqual(t, first["id"], late["id"])
}
