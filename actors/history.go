package actors

import "time"

// history is a channel's ring of recent frames, bounded by count and age.
// It is owned by the channel actor and never shared.
type history struct {
	ring       []*frame
	head, size int
	limit      int           // <= 0: history disabled
	ttl        time.Duration // <= 0: no age limit
	// evicted is the id of the last frame pushed out. A client that saw it
	// has missed nothing the ring still holds, so it resumes from the start.
	evicted string
}

func newHistory(limit int, ttl time.Duration) history {
	return history{limit: limit, ttl: ttl}
}

func (h *history) enabled() bool { return h.limit > 0 }

func (h *history) at(i int) *frame { return h.ring[(h.head+i)%len(h.ring)] }

// add keeps f, evicting the oldest frame when the ring is full. The ring grows
// up to the limit lazily, so a quiet channel does not hold a full ring.
func (h *history) add(f *frame) {
	if h.limit <= 0 {
		return
	}
	if h.size == len(h.ring) && len(h.ring) < h.limit {
		h.grow()
	}
	if h.size < len(h.ring) {
		h.ring[(h.head+h.size)%len(h.ring)] = f
		h.size++
		return
	}
	h.evicted = h.ring[h.head].id
	h.ring[h.head] = f
	h.head = (h.head + 1) % len(h.ring)
}

func (h *history) grow() {
	n := min(h.limit, max(2*len(h.ring), 64))
	ring := make([]*frame, n)
	for i := 0; i < h.size; i++ {
		ring[i] = h.at(i)
	}
	h.ring, h.head = ring, 0
}

// expire drops frames older than the TTL.
func (h *history) expire(now time.Time) {
	if h.ttl <= 0 {
		return
	}
	for h.size > 0 && now.Sub(h.at(0).at) > h.ttl {
		h.evicted = h.ring[h.head].id
		h.ring[h.head] = nil
		h.head = (h.head + 1) % len(h.ring)
		h.size--
	}
}

func (h *history) empty() bool { return h.size == 0 }

// resume statuses, also the "reason" of a reset event.
const (
	resumeFound    = ""
	resumeUnknown  = "unknown id"
	resumeExpired  = "id older than the retained history"
	resumeDisabled = "history disabled"
)

// after returns the frames strictly after the one with id lastID. An id is
// looked up from the newest frame back, so a publisher that reuses an id
// resumes from its latest use.
func (h *history) after(lastID string) ([]*frame, string) {
	if !h.enabled() {
		return nil, resumeDisabled
	}
	from, ok := h.find(lastID)
	if !ok {
		if p, isPos := ParsePos(lastID); isPos && (h.size == 0 || p.Less(h.at(0).pos)) {
			return nil, resumeExpired
		}
		return nil, resumeUnknown
	}
	out := make([]*frame, 0, h.size-1-from)
	for j := from + 1; j < h.size; j++ {
		out = append(out, h.at(j))
	}
	return out, resumeFound
}

// find returns the index of the frame with id lastID, or -1 when lastID is
// the frame evicted last (so everything retained follows it).
func (h *history) find(lastID string) (int, bool) {
	for i := h.size - 1; i >= 0; i-- {
		if h.at(i).id == lastID {
			return i, true
		}
	}
	if lastID != "" && lastID == h.evicted {
		return -1, true
	}
	return 0, false
}
