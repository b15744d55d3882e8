package httpedge_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

// dropCounter counts closes by reason and frames dropped by a policy.
type dropCounter struct {
	*closeCounter
	dropped atomic.Int64
}

func (d *dropCounter) Dropped(n int) { d.dropped.Add(int64(n)) }

// TestPublisherFasterThanStalledReaders floods a channel that has readers
// who keep up and readers who stopped reading. Whatever the policy, the
// memory the stalled ones hold stays within their per-stream bound (it
// would grow by the whole flood, per stalled reader, without one), the
// readers who keep up get every event in order, and what happens to the
// stalled ones is counted.
func TestPublisherFasterThanStalledReaders(t *testing.T) {
	const (
		readers = 3
		stalled = 5
		bursts  = 100
		burst   = 200
		size    = 4096
		history = 100
		// Flooded: bursts·burst·size = 80 MB, to each stalled reader. The
		// queues share the frames, so without a bound the heap would grow
		// by those 80 MB; with it, by the newest 1 MiB (the queue bound),
		// the write each stalled stream is blocked in (up to 1 MiB each),
		// the channel's 100-event history, and parser buffers.
		maxGrowth = 24 << 20
	)
	for _, policy := range []actors.Overflow{actors.Disconnect, actors.DropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			obs := &dropCounter{closeCounter: newCloseCounter()}
			s := newHubServer(t, actors.Config{Overflow: policy, Observer: obs, History: history,
				// A stalled reader under a drop policy is cut when a write
				// blocks this long; here it must outlive the flood, which
				// takes a few seconds alone and over a minute on a loaded
				// 2-core machine.
				WriteTimeout: 10 * time.Minute}, httpedge.Config{})
			var stalledConns []net.Conn
			for range stalled {
				stalledConns = append(stalledConns, dialStalled(t, s.srv.Listener.Addr().String(), "/events?channel=flood"))
			}
			var cs []*client
			for range readers {
				cs = append(cs, s.subscribe(t, "channel=flood", nil))
			}
			_, base := settle()
			base = min(base, heapAfterGC())

			// Bursts that the readers who keep up can absorb (200 frames,
			// 800 KB: inside the 1000-frame, 1 MiB bound), published
			// in-process as fast as the hub takes them; the next one waits
			// until every reader has read the last.
			pad := strings.Repeat("x", size)
			var peak uint64
			n := 0
			for range bursts {
				for range burst {
					_, err := s.hub.Publish(context.Background(), "flood", sse.Event{Data: fmt.Appendf(nil, "%d %s", n, pad)})
					require.NoError(t, err)
					n++
				}
				for _, c := range cs {
					for i, ev := range c.NextN(t, burst) {
						want := fmt.Sprintf("%d ", n-burst+i)
						require.True(t, strings.HasPrefix(string(ev.Data), want), "event %s in order, got %.12q", want, ev.Data)
					}
				}
				if heap := heapAfterGC(); heap > peak {
					peak = heap
				}
			}
			growth := int64(peak) - int64(base)
			t.Logf("%s: %d events of %d B to %d readers and %d stalled ones: heap grew at most %d KB; closes %v; frames dropped %d",
				policy, n, size, readers, stalled, growth>>10, obs.snapshot(), obs.dropped.Load())
			assert.Less(t, growth, int64(maxGrowth), "memory bounded by the per-stream queue")

			switch policy {
			case actors.Disconnect:
				require.Eventually(t, func() bool { return obs.count(actors.SlowConsumer) == stalled }, wait, time.Millisecond,
					"every stalled reader closed as a slow consumer: %v", obs.snapshot())
				assert.Equal(t, readers, s.hub.OpenStreams(), "the readers who keep up stay")
				assert.Zero(t, obs.dropped.Load())
			case actors.DropOldest:
				assert.Equal(t, readers+stalled, s.hub.OpenStreams(), "nobody is disconnected")
				// Each stalled stream holds at most 1 MiB (255 frames) in
				// its queue, as much in the write it is blocked in, and
				// what the kernel's socket buffers took (up to about 4 MB
				// on loopback); the rest was dropped for it.
				assert.Greater(t, obs.dropped.Load(), int64(stalled*(n-3000)), "drops counted")
				assert.Empty(t, obs.snapshot(), "no stream closed")
			}
			_ = stalledConns
		})
	}
}

func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
