//go:build !race

// The race detector allocates for every goroutine it tracks, so allocation
// counts only mean something without it; .ci/run runs this file separately.

package actors_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/squall-sse/squall/sse"
)

// A publish allocates for its frame and its bookkeeping, never per
// subscriber: the frame's bytes are shared and a wake-up costs nothing.
func TestPublishAllocationsDoNotGrowWithSubscribers(t *testing.T) {
	t.Run("no flush gap", func(t *testing.T) { publishAllocations(t, -1) })
	t.Run("default flush gap", func(t *testing.T) { publishAllocations(t, 0) })
}

// publishAllocations runs with the flush gap off (-1) and at its default
// (0): a stream then waits out the gap once per awaited publish, and its
// timer, made once, must not show up per publish.
func publishAllocations(t *testing.T, gap time.Duration) {
	perPublish := func(n int) float64 {
		f := newFanout(t, n, gap)
		ev := sse.Event{Data: []byte("hello")}
		delivered := f.count.n.Load()
		return testing.AllocsPerRun(50, func() {
			f.publish(t, ev)
			delivered += int64(n)
			f.await(t, delivered)
		})
	}
	small, large := perPublish(10), perPublish(1000)
	t.Logf("allocations per publish: %.1f with 10 subscribers, %.1f with 1000", small, large)
	assert.Less(t, large, small+20, "allocations per publish grow with subscribers")
}
