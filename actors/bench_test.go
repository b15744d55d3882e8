package actors_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/sse"
)

// discardWriter is an in-process client: a ResponseWriter that keeps nothing.
type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// SetWriteDeadline makes it look like a network connection to
// http.ResponseController, as a real client's writer does.
func (w *discardWriter) SetWriteDeadline(time.Time) error { return nil }

// deliveries counts the events written to clients.
type deliveries struct {
	actors.Observer
	n atomic.Int64
}

func (d *deliveries) Flushed(events int, _ time.Duration) { d.n.Add(int64(events)) }

// fanout is a hub with n in-process subscribers on channel "c".
type fanout struct {
	hub     *actors.Hub
	count   *deliveries
	streams []*actors.Stream
}

// newFanout's gap is the hub's Config.FlushGap.
func newFanout(tb testing.TB, n int, gap time.Duration) *fanout {
	tb.Helper()
	d := &deliveries{Observer: actorstest.NopObserver{}}
	h := actorstest.NewHub(tb, actors.Config{Observer: d, History: -1, Heartbeat: -1, MaxQueueFrames: -1, MaxQueueBytes: -1, FlushGap: gap})
	f := &fanout{hub: h, count: d}
	for range n {
		s, err := h.Open(&discardWriter{header: http.Header{}}, actors.StreamOptions{Channels: []string{"c"}})
		require.NoError(tb, err)
		f.streams = append(f.streams, s)
	}
	// A publish is a round trip through the channel: once this one is
	// delivered everywhere, every subscriber has joined.
	f.publish(tb, sse.Event{Data: []byte("warm-up")})
	f.await(tb, int64(n))
	tb.Cleanup(f.close)
	return f
}

func (f *fanout) publish(tb testing.TB, ev sse.Event) {
	if _, err := f.hub.Publish(context.Background(), "c", ev); err != nil {
		tb.Fatal(err)
	}
}

// await waits until want events have been written in all.
func (f *fanout) await(tb testing.TB, want int64) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for f.count.n.Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("delivered %d of %d", f.count.n.Load(), want)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func (f *fanout) close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, s := range f.streams {
		s.Wait(ctx)
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			// No flush gap: these writers cost nothing, so pacing them
			// would only add the gap's wait to the measurement.
			f := newFanout(b, n, -1)
			ev := sse.Event{Data: make([]byte, 100)}
			for i := range ev.Data {
				ev.Data[i] = 'x'
			}
			base := f.count.n.Load()
			publishes := 0
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				f.publish(b, ev)
				publishes++
			}
			f.await(b, base+int64(publishes*n))
			elapsed := time.Since(start)
			b.ReportMetric(float64(publishes*n)/elapsed.Seconds(), "deliveries/s")
		})
	}
}
