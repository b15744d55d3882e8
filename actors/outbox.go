package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// outbox holds the frames published to one stream and not yet written. The
// channel actors feeding the stream push into it; the stream's connection
// actor takes up to flushBytes at once when it flushes. A push wakes the
// connection actor only when no wake-up is already on its way, so a burst
// costs one mailbox message and one flush, however many frames it holds.
//
// Its mutex is the one lock shared by several actors (see "Concurrency" in
// the package doc): the stream's own, held for a few pointer moves, taken
// by the channels of that one stream (through Stream.offer, offerControl
// and offerReplay) and by its connection actor, never while another lock
// is held and never across a send or a write.
type outbox struct {
	mu       sync.Mutex
	frames   []*frame // oldest first
	bytes    int
	dropped  int64
	woken    bool // a flushNow is queued for the connection actor
	crowded  bool // a push came from a channel with many subscribers
	closed   bool // the stream is gone: refuse everything
	policy   Overflow
	maxFrame int // <= 0: no bound
	maxBytes int // <= 0: no bound
	// waiters are the channels whose replay did not fit: the connection
	// actor tells them once the outbox has drained below the replay share.
	waiters []*actor.PID
}

func (o *outbox) over(extraFrames, extraBytes int) bool {
	return (o.maxFrame > 0 && len(o.frames)+extraFrames > o.maxFrame) ||
		(o.maxBytes > 0 && o.bytes+extraBytes > o.maxBytes)
}

// push queues a live frame under the overflow policy. crowded says the
// frame goes to many streams at once. wake says the caller must wake the
// connection actor; dropped is how many frames a drop policy discarded;
// kick means the stream passed its bound under Disconnect and is now closed
// to further frames.
func (o *outbox) push(f *frame, crowded bool) (wake bool, dropped int, kick bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false, 0, false
	}
	o.crowded = o.crowded || crowded
	if len(o.frames) == 1 && o.frames[0].beat {
		// A heartbeat is queued only into an empty outbox and is pointless
		// once data follows; left in place, it could push a frame at the
		// bound over it and cut a healthy stream.
		o.bytes -= len(o.frames[0].b)
		o.frames[0] = nil
		o.frames = o.frames[:0]
	}
	if o.over(1, len(f.b)) {
		switch o.policy {
		case Disconnect:
			o.closed = true
			return false, 0, true
		case DropNewest:
			o.dropped++
			return false, 1, false
		case DropOldest:
			for dropped < len(o.frames) && o.over(1-dropped, len(f.b)) {
				o.bytes -= len(o.frames[dropped].b)
				dropped++
			}
			clear(o.frames[:dropped])
			o.frames = o.frames[dropped:]
			o.dropped += int64(dropped)
		}
	}
	o.frames = append(o.frames, f)
	o.bytes += len(f.b)
	wake = !o.woken
	o.woken = true
	return wake, dropped, false
}

// pushControl queues a frame of the hub's own (a reset event) whatever the
// bound: it is a few dozen bytes and must not be lost.
func (o *outbox) pushControl(f *frame) (wake bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.frames = append(o.frames, f)
	o.bytes += len(f.b)
	wake = !o.woken
	o.woken = true
	return wake
}

// replayShare is how much of the bound replayed frames may fill: half, so
// that live frames of the stream's other channels still fit beside them.
func (o *outbox) replayShare() (frames, bytes int) {
	frames, bytes = -1, -1
	if o.maxFrame > 0 {
		frames = max(o.maxFrame/2, 1)
	}
	if o.maxBytes > 0 {
		bytes = max(o.maxBytes/2, 1)
	}
	return frames, bytes
}

func (o *outbox) belowShare(extraFrames, extraBytes int) bool {
	sf, sb := o.replayShare()
	return (sf < 0 || len(o.frames)+extraFrames <= sf) && (sb < 0 || o.bytes+extraBytes <= sb)
}

// pushReplay queues as many of fs, in order, as fit in the replay share (at
// least the first when nothing is queued, so that a frame larger than the
// share still goes out) and returns how many it took. When some did not
// fit, the channel (from) is told by a refillMsg once the outbox has
// drained, and pushes the rest then: a replay never holds more than about
// the stream's bound, however long the history.
func (o *outbox) pushReplay(fs []*frame, from *actor.PID) (n int, wake bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, false
	}
	for _, f := range fs {
		if len(o.frames) > 0 && !o.belowShare(1, len(f.b)) {
			break
		}
		o.frames = append(o.frames, f)
		o.bytes += len(f.b)
		n++
	}
	if n < len(fs) {
		found := false
		for _, w := range o.waiters {
			found = found || w == from
		}
		if !found {
			o.waiters = append(o.waiters, from)
		}
	}
	if n > 0 {
		wake = !o.woken
		o.woken = true
	}
	return n, wake
}

// takeWaiters returns the channels waiting to refill, once the outbox has
// room for them, and forgets them.
func (o *outbox) takeWaiters() []*actor.PID {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.waiters) == 0 || !o.belowShare(0, 0) {
		return nil
	}
	w := o.waiters
	o.waiters = nil
	return w
}

// pushIdle queues f only if nothing else is queued: a heartbeat is pointless
// behind data.
func (o *outbox) pushIdle(f *frame) (wake bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || len(o.frames) > 0 || o.woken {
		return false
	}
	o.frames = append(o.frames, f)
	o.bytes += len(f.b)
	o.woken = true
	return true
}

// take hands over the oldest queued frames, up to maxBytes of them (at
// least one; maxBytes <= 0 takes everything), appended to spare. more says
// frames remain, for another flush: the outbox then stays marked as woken.
func (o *outbox) take(spare []*frame, maxBytes int) (out []*frame, more bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, size := 0, 0
	for n < len(o.frames) && (maxBytes <= 0 || n == 0 || size+len(o.frames[n].b) <= maxBytes) {
		size += len(o.frames[n].b)
		n++
	}
	if n == len(o.frames) {
		out = o.frames
		o.frames, o.bytes, o.woken, o.crowded = spare[:0], 0, false, false
		return out, false
	}
	out = append(spare[:0], o.frames[:n]...)
	rest := copy(o.frames, o.frames[n:])
	clear(o.frames[rest:])
	o.frames = o.frames[:rest]
	o.bytes -= size
	return out, true
}

// backlog reports whether more than one frame waits: the connection
// actor, woken with the first, did not run before another came.
func (o *outbox) backlog() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.frames) > 1
}

// isCrowded reports whether a frame waiting here went to many streams.
func (o *outbox) isCrowded() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.crowded
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.frames, o.bytes, o.waiters = nil, 0, nil
	o.mu.Unlock()
}

func (o *outbox) droppedCount() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}
