package actors_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/sse"
)

// timedWriter records each write of data with the time it was made.
type timedWriter struct {
	header http.Header
	mu     sync.Mutex
	writes []timedWrite
	gate   chan struct{} // when set, the next write of data waits for it to close
}

type timedWrite struct {
	at   time.Time
	data string
}

func (w *timedWriter) Header() http.Header { return w.header }
func (w *timedWriter) WriteHeader(int)     {}
func (w *timedWriter) Flush()              {}
func (w *timedWriter) Write(b []byte) (int, error) {
	if len(b) > 0 {
		w.mu.Lock()
		w.writes = append(w.writes, timedWrite{time.Now(), string(b)})
		gate := w.gate
		w.gate = nil
		w.mu.Unlock()
		if gate != nil {
			<-gate
		}
	}
	return len(b), nil
}

// datas are the data fields of the events in one write.
func (tw timedWrite) datas() []string { return eventData(strings.NewReader(tw.data)) }

// eventData parses a recorded stream into the data of its events.
func eventData(r io.Reader) []string {
	var out []string
	p := sse.NewParser(r)
	for {
		ev, err := p.Next()
		if err != nil {
			return out
		}
		out = append(out, string(ev.Data))
	}
}

// openTimed opens a stream that records its writes; it ends, as if its
// client left, when the test does.
func openTimed(t *testing.T, h *actors.Hub, opts actors.StreamOptions) *timedWriter {
	t.Helper()
	w := &timedWriter{header: http.Header{}}
	s, err := h.Open(w, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Wait(ctx)
	})
	return w
}

func (w *timedWriter) snapshot() []timedWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]timedWrite(nil), w.writes...)
}

func TestFlushGapWritesABurstOnce(t *testing.T) {
	const gap = 300 * time.Millisecond
	h := actorstest.NewHub(t, actors.Config{FlushGap: gap, FixedFlushGap: true, History: -1, Heartbeat: -1})
	w := openTimed(t, h, actors.StreamOptions{Channels: []string{"c"}})

	publish := func(data string) {
		_, err := h.Publish(context.Background(), "c", sse.Event{Data: []byte(data)})
		require.NoError(t, err)
	}
	publish("a")
	require.Eventually(t, func() bool { return len(w.snapshot()) == 1 }, 5*time.Second, time.Millisecond, "a written")
	// The first write set the gap going: these three arrive inside it.
	publish("b")
	publish("c")
	publish("d")
	require.Eventually(t, func() bool { return len(w.snapshot()) == 2 }, 5*time.Second, time.Millisecond, "b, c, d written")

	writes := w.snapshot()
	assert.Equal(t, []string{"a"}, writes[0].datas())
	assert.Equal(t, []string{"b", "c", "d"}, writes[1].datas(), "the burst in one write")
	assert.GreaterOrEqual(t, writes[1].at.Sub(writes[0].at), gap, "not before the gap ended")
	assert.Never(t, func() bool { return len(w.snapshot()) > 2 }, 2*gap, 10*time.Millisecond, "no empty or repeated write after the burst")
}

func TestNoFlushGapWritesEachWakeUp(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{FlushGap: -1, History: -1, Heartbeat: -1})
	w := openTimed(t, h, actors.StreamOptions{Channels: []string{"c"}})
	for i, data := range []string{"a", "b", "c"} {
		_, err := h.Publish(context.Background(), "c", sse.Event{Data: []byte(data)})
		require.NoError(t, err)
		// Each waits for the previous write, so none can join another.
		require.Eventually(t, func() bool { return len(w.snapshot()) == i+1 }, 5*time.Second, time.Millisecond, "%s written alone", data)
	}
	var got [][]string
	for _, wr := range w.snapshot() {
		got = append(got, wr.datas())
	}
	assert.Equal(t, [][]string{{"a"}, {"b"}, {"c"}}, got)
}

func TestFlushGapHoldsNothingBackAtStartOrClose(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{FlushGap: time.Hour, FixedFlushGap: true, History: -1, Heartbeat: -1})
	w := &timedWriter{header: http.Header{}}
	s, err := h.Open(w, actors.StreamOptions{Channels: []string{"c"}})
	require.NoError(t, err)
	_, err = h.Publish(context.Background(), "c", sse.Event{Data: []byte("a")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(w.snapshot()) == 1 }, 5*time.Second, time.Millisecond,
		"the first event goes out at once: the headers' flush opens no gap")

	_, err = h.Publish(context.Background(), "c", sse.Event{Data: []byte("b")})
	require.NoError(t, err)
	assert.Never(t, func() bool { return len(w.snapshot()) > 1 }, 200*time.Millisecond, 10*time.Millisecond, "b waits for the gap")
	s.Close(time.Second)
	<-s.Done()
	writes := w.snapshot()
	require.Len(t, writes, 2)
	assert.Equal(t, []string{"b"}, writes[1].datas(), "closing writes what the gap held, with the retry hint")
	assert.Contains(t, writes[1].data, "retry: 1000\n")
}

// With the default (adaptive) gap, a stream whose connection actor gets to
// each event before the next comes writes each at once, however soon the
// next follows: the gap, an hour here, is never waited.
func TestAdaptiveGapWritesEachEventOfAStreamThatKeepsUp(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{FlushGap: time.Hour, History: -1, Heartbeat: -1})
	w := openTimed(t, h, actors.StreamOptions{Channels: []string{"c"}})
	for i, data := range []string{"a", "b", "c"} {
		_, err := h.Publish(context.Background(), "c", sse.Event{Data: []byte(data)})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(w.snapshot()) == i+1 }, 5*time.Second, time.Millisecond, "%s written at once", data)
	}
	var got [][]string
	for _, wr := range w.snapshot() {
		got = append(got, wr.datas())
	}
	assert.Equal(t, [][]string{{"a"}, {"b"}, {"c"}}, got)
}

// A stream that falls behind (its wake-up finds more than the one frame
// that sent it) writes at most once per gap from then on: what queued
// goes out together after the gap, and so does an event that comes just
// after that write.
func TestAdaptiveGapCoalescesAStreamThatFellBehind(t *testing.T) {
	const gap = 300 * time.Millisecond
	h := actorstest.NewHub(t, actors.Config{FlushGap: gap, History: -1, Heartbeat: -1})
	release := make(chan struct{})
	w := &timedWriter{header: http.Header{}, gate: release}
	s, err := h.Open(w, actors.StreamOptions{Channels: []string{"c"}})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Wait(ctx)
	})
	publish := func(data string) {
		_, err := h.Publish(context.Background(), "c", sse.Event{Data: []byte(data)})
		require.NoError(t, err)
	}
	publish("a")
	require.Eventually(t, func() bool { return len(w.snapshot()) == 1 }, 5*time.Second, time.Millisecond, "a being written")
	// The write of a is stuck: b wakes the actor, c queues behind it.
	publish("b")
	publish("c")
	close(release)
	require.Eventually(t, func() bool { return len(w.snapshot()) == 2 }, 5*time.Second, time.Millisecond, "b and c written")
	publish("d")
	require.Eventually(t, func() bool { return len(w.snapshot()) == 3 }, 5*time.Second, time.Millisecond, "d written")

	writes := w.snapshot()
	assert.Equal(t, []string{"b", "c"}, writes[1].datas(), "the backlog in one write")
	assert.GreaterOrEqual(t, writes[1].at.Sub(writes[0].at), gap, "the backlog waited for the gap")
	assert.Equal(t, []string{"d"}, writes[2].datas())
	assert.GreaterOrEqual(t, writes[2].at.Sub(writes[1].at), gap, "behind, the stream writes at most once per gap")
}
