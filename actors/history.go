package actors

import (
	"time"
	"unsafe"
)

// EvictReason says why an event left a channel's history before a client
// could resume from it. It is the label of the eviction metric.
type EvictReason int

const (
	// EvictCount: the channel kept [Config].History newer events.
	EvictCount EvictReason = iota + 1
	// EvictBytes: the channel's history passed [Config].HistoryBytes.
	EvictBytes
	// EvictBudget: the histories of all channels passed
	// [Config].HistoryBudget, and this event was the oldest of them.
	EvictBudget
	// EvictAge: the event was older than [Config].HistoryTTL.
	EvictAge
)

var evictNames = [...]string{"", "count", "bytes", "budget", "age"}

func (r EvictReason) String() string {
	if r <= 0 || int(r) >= len(evictNames) {
		return "evict(?)"
	}
	return evictNames[r]
}

// EvictReasons lists every EvictReason, for declaring metric series.
func EvictReasons() []EvictReason {
	return []EvictReason{EvictCount, EvictBytes, EvictBudget, EvictAge}
}

// frameOverhead is what a retained frame costs beyond its bytes, id and
// key: the frame struct itself, its ring slot, its entry at the budget
// actor and the rounding of the allocator (allocations of a few bytes
// each, rounded up to their size class).
const frameOverhead = int64(unsafe.Sizeof(frame{})) + 8 + int64(unsafe.Sizeof(budgetEntry{})) + 48

// cost is what keeping f in a history holds in memory.
func (f *frame) cost() int64 {
	return int64(cap(f.b)) + int64(len(f.id)) + int64(len(f.key)) + frameOverhead
}

// history is a channel's ring of recent frames, bounded by count, bytes and
// age. It is owned by the channel actor and never shared.
//
// Every frame ever kept has an absolute index (base is that of the oldest
// retained one): a replay cursor is such an index, which stays valid however
// the ring turns, and falls behind base when what it pointed at is evicted.
type history struct {
	ring       []*frame
	head, size int
	base       uint64        // absolute index of the oldest retained frame
	limit      int           // <= 0: history disabled
	maxBytes   int64         // <= 0: no byte bound
	ttl        time.Duration // <= 0: no age limit
	bytes      int64         // cost of the retained frames
	// evicted is the id of the last frame pushed out. A client that saw it
	// has missed nothing the ring still holds, so it resumes from the start.
	evicted string
	// keys maps the idempotency keys of retained frames to them: a key is
	// remembered exactly as long as its event is replayable.
	keys map[string]*frame
	// gone counts evictions by reason since the channel last reported them.
	gone [len(evictNames)]int
}

func newHistory(limit int, maxBytes int64, ttl time.Duration) history {
	return history{limit: limit, maxBytes: maxBytes, ttl: ttl}
}

func (h *history) enabled() bool { return h.limit > 0 }

func (h *history) at(i int) *frame { return h.ring[(h.head+i)%len(h.ring)] }

// end is the absolute index the next frame kept will have.
func (h *history) end() uint64 { return h.base + uint64(h.size) }

// get returns the frame at absolute index abs, which must be retained.
func (h *history) get(abs uint64) *frame { return h.at(int(abs - h.base)) }

// add keeps f, first evicting the oldest frames past the count or byte
// bound. A frame larger than the byte bound on its own is not kept: it was
// delivered, and a client that saw it resumes after it (it becomes the
// evicted mark).
func (h *history) add(f *frame) {
	if h.limit <= 0 {
		return
	}
	c := f.cost()
	if h.maxBytes > 0 && c > h.maxBytes {
		for h.size > 0 {
			h.evictOldest(EvictBytes)
		}
		h.evicted = f.id
		h.gone[EvictBytes]++
		return
	}
	for h.size >= h.limit {
		h.evictOldest(EvictCount)
	}
	for h.maxBytes > 0 && h.size > 0 && h.bytes+c > h.maxBytes {
		h.evictOldest(EvictBytes)
	}
	if h.size == len(h.ring) {
		h.grow()
	}
	h.ring[(h.head+h.size)%len(h.ring)] = f
	h.size++
	h.bytes += c
	if f.key != "" {
		if h.keys == nil {
			h.keys = map[string]*frame{}
		}
		h.keys[f.key] = f
	}
}

// grow doubles the ring up to the count bound, so a quiet channel does not
// hold a full ring.
func (h *history) grow() {
	n := min(h.limit, max(2*len(h.ring), 8))
	ring := make([]*frame, n)
	for i := 0; i < h.size; i++ {
		ring[i] = h.at(i)
	}
	h.ring, h.head = ring, 0
}

// evictOldest drops the oldest frame and returns it.
func (h *history) evictOldest(r EvictReason) *frame {
	f := h.ring[h.head]
	h.ring[h.head] = nil
	h.head = (h.head + 1) % len(h.ring)
	h.size--
	h.base++
	h.bytes -= f.cost()
	h.evicted = f.id
	if f.key != "" && h.keys[f.key] == f {
		delete(h.keys, f.key)
	}
	h.gone[r]++
	if h.size == 0 {
		// An empty channel gives its ring back; it may stay alive for
		// its subscribers long after its last event.
		h.ring, h.head = nil, 0
	}
	return f
}

// expire drops frames older than the TTL.
func (h *history) expire(now time.Time) {
	if h.ttl <= 0 {
		return
	}
	for h.size > 0 && now.Sub(h.at(0).at) > h.ttl {
		h.evictOldest(EvictAge)
	}
}

// evictUpTo drops every retained frame with an absolute index up to abs,
// for the global budget.
func (h *history) evictUpTo(abs uint64) {
	for h.size > 0 && h.base <= abs {
		h.evictOldest(EvictBudget)
	}
}

func (h *history) empty() bool { return h.size == 0 }

// byKey returns the retained frame published with idempotency key.
func (h *history) byKey(key string) (*frame, bool) {
	f, ok := h.keys[key]
	return f, ok
}

// resume statuses, also the "reason" of a reset event.
const (
	resumeFound    = ""
	resumeUnknown  = "unknown id"
	resumeExpired  = "id older than the retained history"
	resumeDisabled = "history disabled"
)

// locate returns the absolute index of the first frame strictly after the
// one with id lastID. An id is looked up from the newest frame back, so a
// publisher that reuses an id resumes from its latest use, and nothing at
// or before it is sent again.
func (h *history) locate(lastID string) (uint64, string) {
	if !h.enabled() {
		return 0, resumeDisabled
	}
	for i := h.size - 1; i >= 0; i-- {
		if h.at(i).id == lastID {
			return h.base + uint64(i) + 1, resumeFound
		}
	}
	if lastID != "" && lastID == h.evicted {
		return h.base, resumeFound
	}
	if p, isPos := ParsePos(lastID); isPos && (h.size == 0 || p.Less(h.at(0).pos)) {
		return 0, resumeExpired
	}
	return 0, resumeUnknown
}
