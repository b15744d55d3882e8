package actors

import (
	"container/heap"

	"github.com/asynkron/protoactor-go/actor"
)

// channelOverhead is what a channel actor that is alive only for its
// history costs beyond its frames: the actor, its mailbox, its PID in the
// process registry and the router's map entry, its timer. Measured with
// TestHostileHistoryMemory's many-channels case: about 1.9 KB per idle
// channel holding one small event, frame excluded; rounded up.
const channelOverhead = 2 << 10

// budgetEntry is one retained frame as the budget actor sees it.
type budgetEntry struct {
	abs  uint64 // its absolute index in its channel's history
	cost int64
	at   int64 // publish time, unix ns: the global eviction order
}

// budgetActor enforces [Config].HistoryBudget, the bound on the memory of
// every channel's history together, evicting the oldest frames of all
// channels first.
//
// It owns the accounting; channel actors own their histories. Each channel
// tells it, in one message per change (see budgetUpdate), what it kept and
// up to where it evicted for its own reasons (count, bytes, age). When the
// total passes the budget, the budget actor takes the oldest entries off
// its books at once and asks their channels, by message, to evict up to
// them. No state is shared between the actors: memory may exceed the
// budget only by what is in flight in mailboxes.
type budgetActor struct {
	limit int64
	used  int64
	obs   HistoryObserver
	chans map[*actor.PID]*budgetChannel
	order budgetHeap // channels by the publish time of their oldest entry
	evict map[*budgetChannel]uint64
}

// budgetChannel is the books of one channel: its retained frames, oldest
// first.
type budgetChannel struct {
	pid   *actor.PID
	q     []budgetEntry
	index int // in the heap; -1 while it has no entry
}

// budgetUpdate tells the budget actor that a channel's history now starts
// at absolute index base (everything before it is gone), and, when hasAdd,
// that it kept add. gone says the channel stopped: all of it is gone.
type budgetUpdate struct {
	pid    *actor.PID
	base   uint64
	add    budgetEntry
	hasAdd bool
	gone   bool
}

func (*budgetUpdate) IgnoreDeadLetterLogging() {}

// budgetEvict asks a channel to evict its frames up to absolute index upTo,
// which the budget actor has already taken off its books.
type budgetEvict struct{ upTo uint64 }

func (*budgetEvict) IgnoreDeadLetterLogging() {}

func newBudgetActor(limit int64, obs HistoryObserver) *budgetActor {
	return &budgetActor{limit: limit, obs: obs, chans: map[*actor.PID]*budgetChannel{}, evict: map[*budgetChannel]uint64{}}
}

func (b *budgetActor) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*budgetUpdate)
	if !ok {
		return
	}
	c := b.chans[m.pid]
	if c == nil {
		if !m.hasAdd || m.gone {
			return
		}
		c = &budgetChannel{pid: m.pid, index: -1}
		b.chans[m.pid] = c
		b.used += channelOverhead
	}
	var oldHead budgetEntry
	if len(c.q) > 0 {
		oldHead = c.q[0]
	}
	n := 0
	for n < len(c.q) && (m.gone || c.q[n].abs < m.base) {
		b.used -= c.q[n].cost
		n++
	}
	c.q = c.q[n:]
	if m.hasAdd && !m.gone {
		c.q = append(c.q, m.add)
		b.used += m.add.cost
	}
	switch {
	case len(c.q) == 0:
		b.drop(c)
	case c.index < 0:
		heap.Push(&b.order, c)
	case c.q[0] != oldHead:
		heap.Fix(&b.order, c.index)
	}
	b.enforce(ctx)
	b.obs.HistoryBytes(b.used)
}

// enforce takes the oldest entries of all channels off the books until the
// total fits the budget, then asks each channel concerned to evict them.
func (b *budgetActor) enforce(ctx actor.Context) {
	for b.used > b.limit && len(b.order) > 0 {
		c := b.order[0]
		e := c.q[0]
		c.q = c.q[1:]
		b.used -= e.cost
		b.evict[c] = e.abs
		if len(c.q) == 0 {
			b.drop(c)
		} else {
			heap.Fix(&b.order, 0)
		}
	}
	for c, upTo := range b.evict {
		ctx.Send(c.pid, &budgetEvict{upTo: upTo})
		delete(b.evict, c)
	}
}

func (b *budgetActor) drop(c *budgetChannel) {
	if c.index >= 0 {
		heap.Remove(&b.order, c.index)
	}
	delete(b.chans, c.pid)
	b.used -= channelOverhead
}

type budgetHeap []*budgetChannel

func (h budgetHeap) Len() int           { return len(h) }
func (h budgetHeap) Less(i, j int) bool { return h[i].q[0].at < h[j].q[0].at }
func (h budgetHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *budgetHeap) Push(x any) {
	c := x.(*budgetChannel)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *budgetHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	c.index = -1
	*h = old[:len(old)-1]
	return c
}
