package actors_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
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

// syscallWriter is a client whose every write is one write(2) to
// /dev/null: the kernel call a socket write costs, without a client.
type syscallWriter struct {
	header http.Header
	f      *os.File
}

func (w *syscallWriter) Header() http.Header              { return w.header }
func (w *syscallWriter) Write(b []byte) (int, error)      { return w.f.Write(b) }
func (w *syscallWriter) WriteHeader(int)                  {}
func (w *syscallWriter) Flush()                           {}
func (w *syscallWriter) SetWriteDeadline(time.Time) error { return nil }

// writeLog counts the writes that carried events and the events, and
// keeps the age of each write's oldest event.
type writeLog struct {
	actors.Observer
	mu     sync.Mutex
	writes int64
	events int64
	ages   []time.Duration
}

func (l *writeLog) Flushed(events int, oldest time.Duration) {
	if events == 0 {
		return
	}
	l.mu.Lock()
	l.writes++
	l.events += int64(events)
	l.ages = append(l.ages, oldest)
	l.mu.Unlock()
}

// BenchmarkPacedFanout publishes at a fixed rate for a second to 1,000
// streams whose writes are real system calls, with the flush gap fixed,
// adaptive (the default) and off, and reports the writes per event
// delivered, the age of a write's oldest event (p50, p99) and the rate the
// one publisher reached. Run it with -benchtime=1x; figures are counters
// of the mechanism, not of a network.
func BenchmarkPacedFanout(b *testing.B) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(b, err)
	b.Cleanup(func() { null.Close() })
	modes := []struct {
		name  string
		gap   time.Duration
		fixed bool
	}{{"gap=fixed", 20 * time.Millisecond, true}, {"gap=adaptive", 20 * time.Millisecond, false}, {"gap=none", -1, false}}
	for _, rate := range []int{100, 1000} {
		for _, m := range modes {
			b.Run(fmt.Sprintf("rate=%d/%s", rate, m.name), func(b *testing.B) {
				const subs = 1000
				l := &writeLog{Observer: actorstest.NopObserver{}}
				h := actorstest.NewHub(b, actors.Config{Observer: l, History: -1, Heartbeat: -1, MaxQueueFrames: -1, MaxQueueBytes: -1, FlushGap: m.gap, FixedFlushGap: m.fixed})
				var streams []*actors.Stream
				for range subs {
					s, err := h.Open(&syscallWriter{header: http.Header{}, f: null}, actors.StreamOptions{Channels: []string{"c"}})
					require.NoError(b, err)
					streams = append(streams, s)
				}
				b.Cleanup(func() {
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					for _, s := range streams {
						s.Wait(ctx)
					}
				})
				ev := sse.Event{Data: make([]byte, 100)}
				for b.Loop() {
					l.mu.Lock()
					l.writes, l.events, l.ages = 0, 0, l.ages[:0]
					l.mu.Unlock()
					start := time.Now()
					sent := 0
					for time.Since(start) < time.Second {
						if due := start.Add(time.Duration(sent) * time.Second / time.Duration(rate)); time.Until(due) > 0 {
							time.Sleep(time.Until(due))
						}
						if _, err := h.Publish(context.Background(), "c", ev); err != nil {
							b.Fatal(err)
						}
						sent++
					}
					reached := float64(sent) / time.Since(start).Seconds()
					deadline := time.Now().Add(30 * time.Second)
					for {
						l.mu.Lock()
						n := l.events
						l.mu.Unlock()
						if n >= int64(sent*subs) {
							break
						}
						if time.Now().After(deadline) {
							b.Fatalf("delivered %d of %d", n, sent*subs)
						}
						time.Sleep(time.Millisecond)
					}
					l.mu.Lock()
					slices.Sort(l.ages)
					b.ReportMetric(float64(l.writes)/float64(l.events), "writes/event")
					b.ReportMetric(float64(l.ages[len(l.ages)/2])/1e6, "p50-ms")
					b.ReportMetric(float64(l.ages[len(l.ages)*99/100])/1e6, "p99-ms")
					b.ReportMetric(reached, "ev/s")
					l.mu.Unlock()
				}
			})
		}
	}
}
