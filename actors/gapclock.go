package actors

import (
	"sync"
	"time"
)

// gapTick is the resolution of a hub's gap clock: a flush gap ends up to
// this much late, never early.
const gapTick = time.Millisecond

// gapClock ends the flush gaps of a hub's streams (see connActor.wait) with
// one timer per tick that has streams due, not one per stream. A stream
// that fell behind waits out a gap before each write, so with a timer of
// its own 1,000 such streams at 1,000 events/s fired 50,000 timers a
// second, each on a goroutine of its own; the clock fires at most 1,000,
// each waking every stream due at that tick.
type gapClock struct {
	// epoch numbers the ticks. Its monotonic reading makes them immune
	// to steps of the wall clock, which would otherwise hold a stream's
	// wake-up back by as much as the clock went back.
	epoch time.Time

	mu    sync.Mutex // held to add to a slot, take one, or stop; never across a send
	slots map[int64]*gapSlot
	done  bool
}

type gapSlot struct {
	timer   *time.Timer
	streams []*Stream
}

func newGapClock() *gapClock { return &gapClock{epoch: time.Now(), slots: map[int64]*gapSlot{}} }

// wakeAt has s's connection actor sent a wake-up at the first tick at or
// after t, and returns when that is.
func (g *gapClock) wakeAt(s *Stream, t time.Time) time.Time {
	tick := (int64(t.Sub(g.epoch)) + int64(gapTick) - 1) / int64(gapTick)
	at := g.epoch.Add(time.Duration(tick) * gapTick)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return at
	}
	sl := g.slots[tick]
	if sl == nil {
		sl = &gapSlot{}
		g.slots[tick] = sl
		// The timer runs fire on a goroutine of its own, never this one,
		// so arming it under mu cannot deadlock.
		sl.timer = time.AfterFunc(time.Until(at), func() { g.fire(tick) })
	}
	sl.streams = append(sl.streams, s)
	return at
}

func (g *gapClock) fire(tick int64) {
	g.mu.Lock()
	sl := g.slots[tick]
	delete(g.slots, tick)
	g.mu.Unlock()
	if sl == nil {
		return // stopped
	}
	for _, s := range sl.streams {
		select {
		case <-s.done:
			// Gone while it waited: nothing to wake, and a message to a
			// stopped actor would only be a dead letter.
		default:
			s.wake()
		}
	}
}

// stop cancels every wake-up not yet sent; the hub calls it once its
// streams are gone.
func (g *gapClock) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	for tick, sl := range g.slots {
		sl.timer.Stop()
		delete(g.slots, tick)
	}
}
