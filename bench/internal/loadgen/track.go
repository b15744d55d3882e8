package loadgen

import "math"

// maxPending bounds how far out of order a stream may run before the oldest
// hole is taken as lost. Concurrent publishers reorder a channel's events by
// a few places at most; a hole older than this will not be filled.
const maxPending = 4096

// tracker checks one stream's sequence numbers on one channel: every number
// from the start up to the end must arrive exactly once, in any order.
// Only the stream's reader goroutine uses it.
type tracker struct {
	started bool
	low     uint64              // every seq below low has arrived or is counted lost
	pending map[uint64]struct{} // arrived seqs above low
	lost    uint64
	dups    uint64
}

func (t *tracker) start(seq uint64) {
	t.started = true
	t.low = seq
}

// add records seq and reports whether it is new.
func (t *tracker) add(seq uint64) bool {
	switch {
	case seq < t.low:
		t.dups++
		return false
	case seq == t.low:
		t.low++
		t.advance()
		return true
	}
	if t.pending == nil {
		t.pending = make(map[uint64]struct{})
	}
	if _, ok := t.pending[seq]; ok {
		t.dups++
		return false
	}
	t.pending[seq] = struct{}{}
	if len(t.pending) > maxPending {
		lowest := uint64(math.MaxUint64)
		for s := range t.pending {
			lowest = min(lowest, s)
		}
		t.lost += lowest - t.low
		t.low = lowest
		t.advance()
	}
	return true
}

func (t *tracker) advance() {
	for len(t.pending) > 0 {
		if _, ok := t.pending[t.low]; !ok {
			return
		}
		delete(t.pending, t.low)
		t.low++
	}
}

// finish counts as lost every seq below end that never arrived.
func (t *tracker) finish(end uint64) {
	if !t.started || end <= t.low {
		return
	}
	var got uint64
	for s := range t.pending {
		if s < end {
			got++
		}
	}
	t.lost += end - t.low - got
	t.low = end
	clear(t.pending)
}
