package actors

import "sync"

// outbox holds the frames published to one stream and not yet written. The
// channel actors feeding the stream push into it; the stream's connection
// actor takes everything at once when it flushes. A push wakes the
// connection actor only when no wake-up is already on its way, so a burst
// costs one mailbox message and one flush, however many frames it holds.
//
// Its mutex is the stream's own: held for a few pointer moves, contended only
// by the channels of that one stream and its connection actor.
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

// pushAll queues replayed frames whatever the bound: a replay is at most the
// channel's history, and refusing it would lose the events resume is for.
func (o *outbox) pushAll(fs []*frame) (wake bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	for _, f := range fs {
		o.frames = append(o.frames, f)
		o.bytes += len(f.b)
	}
	wake = !o.woken
	o.woken = true
	return wake
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

// take swaps out everything queued, handing back spare for reuse.
func (o *outbox) take(spare []*frame) []*frame {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.frames
	o.frames, o.bytes, o.woken, o.crowded = spare[:0], 0, false, false
	return out
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
	o.frames, o.bytes = nil, 0
	o.mu.Unlock()
}

func (o *outbox) droppedCount() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}
