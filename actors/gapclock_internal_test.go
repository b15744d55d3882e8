package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Streams whose gaps end within one tick share one timer, woken no earlier
// than asked and at most a tick later; stop cancels what is pending.
func TestGapClockSharesATimerPerTick(t *testing.T) {
	g := newGapClock()
	// Just past a tick, an hour from now.
	base := g.epoch.Add(time.Hour + time.Nanosecond)
	var first time.Time
	for i := range 100 {
		asked := base.Add(time.Duration(i) * time.Microsecond)
		at := g.wakeAt(&Stream{done: make(chan struct{})}, asked)
		assert.False(t, at.Before(asked), "never early")
		assert.Less(t, at.Sub(asked), gapTick, "at most a tick late")
		if i == 0 {
			first = at
		}
		assert.True(t, first.Equal(at), "the same tick")
	}
	g.mu.Lock()
	require.Len(t, g.slots, 1, "one timer for the tick")
	for _, sl := range g.slots {
		assert.Len(t, sl.streams, 100)
	}
	g.mu.Unlock()

	g.wakeAt(&Stream{done: make(chan struct{})}, base.Add(gapTick))
	g.stop()
	g.mu.Lock()
	assert.Empty(t, g.slots, "stop cancels every pending wake-up")
	g.mu.Unlock()
	g.wakeAt(&Stream{done: make(chan struct{})}, base)
	g.mu.Lock()
	assert.Empty(t, g.slots, "a stopped clock takes nothing more")
	g.mu.Unlock()
}

// A stream that ended while it waited is not sent a wake-up: its hub is
// never touched (this one has none, so touching it would panic).
func TestGapClockSkipsEndedStreams(t *testing.T) {
	g := newGapClock()
	s := &Stream{done: make(chan struct{})}
	close(s.done)
	g.wakeAt(s, time.Now())
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.slots) == 0
	}, 5*time.Second, time.Millisecond, "the tick fires")
}
