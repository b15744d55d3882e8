package actors_test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/sse"
)

// deadlineWriter is a connection as a connection actor sees it: it takes
// write deadlines, and once stalled, a write blocks until its deadline and
// fails as a network write does.
type deadlineWriter struct {
	header http.Header
	mu     sync.Mutex
	// What the actor did and when.
	deadline time.Time
	sets     int
	writes   int
	// stallAfter > 0: writes after that many block until the deadline.
	stallAfter   int
	stalledAt    time.Time
	stalledUntil time.Time
}

func (w *deadlineWriter) Header() http.Header { return w.header }
func (w *deadlineWriter) WriteHeader(int)     {}
func (w *deadlineWriter) Flush()              {}

func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline = t
	w.sets++
	return nil
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	if w.stallAfter == 0 || w.writes <= w.stallAfter {
		w.mu.Unlock()
		return len(b), nil
	}
	w.stalledAt, w.stalledUntil = time.Now(), w.deadline
	w.mu.Unlock()
	// The peer reads nothing: the kernel holds the write until the
	// deadline the actor set.
	<-time.After(time.Until(w.stalledUntil))
	return 0, os.ErrDeadlineExceeded
}

func (w *deadlineWriter) counts() (sets, writes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sets, w.writes
}

// headersOut waits for the stream's first write, the headers. Without it
// the first event may join that write (it can reach the outbox before the
// connection actor runs its first flush), and writes would no longer count
// one per event.
func headersOut(t *testing.T, w *deadlineWriter) {
	t.Helper()
	require.Eventually(t, func() bool { _, n := w.counts(); return n >= 1 }, 5*time.Second, time.Millisecond)
}

// A stream written often moves its write deadline once per quarter of the
// timeout, not once per write (a timer update per delivery).
func TestWriteDeadlineMovesOncePerQuarter(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{WriteTimeout: 10 * time.Second, Heartbeat: -1, FlushGap: -1})
	w := &deadlineWriter{header: http.Header{}}
	s, err := h.Open(w, actors.StreamOptions{Channels: []string{"c"}})
	require.NoError(t, err)
	headersOut(t, w)
	ctx := context.Background()
	const events = 50
	for i := range events {
		_, err := h.Publish(ctx, "c", sse.Event{Data: []byte(strconv.Itoa(i))})
		require.NoError(t, err)
		// Each event its own write: wait for it before the next.
		require.Eventually(t, func() bool { _, n := w.counts(); return n >= i+2 }, 5*time.Second, time.Millisecond)
	}
	sets, writes := w.counts()
	assert.Equal(t, events+1, writes, "the headers, then one write per event")
	// The whole test takes far less than the 2.5 s after which the
	// deadline would move again.
	assert.Equal(t, 1, sets, "one deadline for %d writes", writes)
	s.Close(0)
	gone, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.Wait(gone)
}

// A write that cannot complete still gets the whole timeout, and at most a
// quarter more; then the stream ends with WriteTimeout.
func TestStalledWriteGetsTheWholeTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	h := actorstest.NewHub(t, actors.Config{WriteTimeout: timeout, Heartbeat: -1, FlushGap: -1})
	// The headers and 3 events go out; the 4th write stalls.
	w := &deadlineWriter{header: http.Header{}, stallAfter: 4}
	s, err := h.Open(w, actors.StreamOptions{Channels: []string{"c"}})
	require.NoError(t, err)
	headersOut(t, w)
	ctx := context.Background()
	for i := range 4 {
		_, err := h.Publish(ctx, "c", sse.Event{Data: []byte(strconv.Itoa(i))})
		require.NoError(t, err)
		require.Eventually(t, func() bool { _, n := w.counts(); return n >= i+2 }, 5*time.Second, time.Millisecond)
	}
	gone, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	assert.Equal(t, actors.WriteTimeout, s.Wait(gone))
	w.mu.Lock()
	given := w.stalledUntil.Sub(w.stalledAt)
	w.mu.Unlock()
	// The deadline is checked just before the write starts.
	assert.GreaterOrEqual(t, given, timeout-50*time.Millisecond, "the stalled write got the whole timeout")
	assert.LessOrEqual(t, given, timeout+timeout/4, "and at most a quarter more")
}
