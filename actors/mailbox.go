package actors

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// mailbox is an unbounded actor.Mailbox that binds its run function once.
//
// protoactor's default mailbox builds a method-value closure every time it
// wakes an idle actor, which is one heap allocation per delivery: a publish
// to 10,000 idle subscribers would cost 10,000 allocations. Binding the run
// function at construction makes a wake-up free, so allocations per publish do
// not grow with the number of subscribers. Each mailbox has its own lock, taken
// by whoever sends to that one actor and by the actor's own run loop, for a
// queue push or pop and nothing else: it never nests with another lock (see
// "Concurrency" in the package doc).
type mailbox struct {
	mu   sync.Mutex
	user queue
	sys  queue

	userCount atomic.Int32
	sysCount  atomic.Int32
	running   atomic.Bool
	suspended atomic.Bool

	invoker    actor.MessageInvoker
	dispatcher actor.Dispatcher
	workers    *workerPool
	spawn      func() // a new worker for the mailbox's turn, bound once

	// settle, once set by close, takes every user message instead of the
	// queue: the actor will never handle one again.
	settle func(any)

	// first is the user queue's buffer until more than len(first) messages
	// wait at once: a connection actor's mailbox rarely holds more than one
	// wake-up, and one inside the mailbox is memory a wake-up touches
	// anyway (see Stream.mb).
	first [2]any
}

// newMailbox is the mailbox of every actor of the hub: its turns run on
// the hub's workers.
func (h *Hub) newMailbox() *mailbox {
	m := &mailbox{}
	h.initMailbox(m)
	return m
}

// initMailbox makes m, a zero mailbox, one of the hub's.
func (h *Hub) initMailbox(m *mailbox) {
	m.workers = h.workers
	m.spawn = m.newWorker
	m.user.buf = m.first[:]
}

// mailboxes is the hub's actor.MailboxProducer.
func (h *Hub) mailboxes() actor.Mailbox { return h.newMailbox() }

func (m *mailbox) PostUserMessage(msg any) {
	if m.queue(msg) {
		m.schedule()
	}
}

// queue queues msg for the actor, or settles it if the actor is stopping
// and returns false.
func (m *mailbox) queue(msg any) bool {
	m.mu.Lock()
	if settle := m.settle; settle != nil {
		m.mu.Unlock()
		settle(msg)
		return false
	}
	m.user.push(msg)
	m.mu.Unlock()
	m.userCount.Add(1)
	return true
}

func (m *mailbox) PostSystemMessage(msg any) {
	m.mu.Lock()
	m.sys.push(msg)
	m.mu.Unlock()
	m.sysCount.Add(1)
	m.schedule()
}

// postAndRun is PostUserMessage for a sender that would only wait for the
// actor's answer (a publish from an HTTP handler): when the actor is idle,
// the sender's goroutine runs the turn itself, instead of handing it to a
// worker and sleeping until the answer comes back, two goroutine switches
// per publish. The turn handles this one message (and the system messages
// queued before it), so the sender is held up by its own message only;
// anything queued by then goes to a worker as usual. Only for messages
// whose handling never blocks: a channel actor's publish queues frames and
// wakes connection actors, it writes nothing.
func (m *mailbox) postAndRun(msg any) {
	if !m.queue(msg) {
		return
	}
	if !m.running.CompareAndSwap(false, true) {
		return // a turn is on: it will get to msg
	}
	m.run(1)
	m.running.Store(false)
	if m.pending() {
		m.schedule()
	}
}

// close hands settle the user messages still queued and, from then on,
// each one posted, in place of the actor, which is stopping. The check in
// PostUserMessage and the queue's hand-over share the lock, so each message
// is either handled by the actor or settled, once: none is left in a queue
// nobody reads, as protoactor leaves a stopped actor's. What is sent once
// the actor has left the registry goes to dead letters instead (see
// Hub.settleDeadLetters).
func (m *mailbox) close(settle func(any)) {
	m.mu.Lock()
	m.settle = settle
	var left []any
	for {
		msg, ok := m.user.pop()
		if !ok {
			break
		}
		left = append(left, msg)
	}
	m.mu.Unlock()
	m.userCount.Add(-int32(len(left)))
	for _, msg := range left {
		settle(msg)
	}
}

func (m *mailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker = invoker
	m.dispatcher = dispatcher
}

func (m *mailbox) Start() {}

func (m *mailbox) UserMessageCount() int { return int(m.userCount.Load()) }

func (m *mailbox) schedule() {
	if m.running.CompareAndSwap(false, true) {
		m.workers.run(m, m.spawn)
	}
}

// newWorker drains the pool's backlog, where run queued this mailbox's
// turn, and stays as a worker.
func (m *mailbox) newWorker() { m.workers.work(nil) }

// runTurn is the mailbox's turn on a worker.
func (m *mailbox) runTurn() {
	growStack(0)
	for {
		m.run(0)
		m.running.Store(false)
		// A message posted between the last pop and the store above saw
		// running == true and did not schedule: pick it up here.
		if !m.pending() || !m.running.CompareAndSwap(false, true) {
			return
		}
	}
}

func (m *mailbox) pending() bool {
	return m.sysCount.Load() > 0 || (!m.suspended.Load() && m.userCount.Load() > 0)
}

// growStack grows the stack of the goroutine about to run a turn to what a
// connection actor's write needs, while the stack is shallow.
//
// A new worker (see workerPool) starts with the smallest stack (2 KB), as
// does one whose stack the garbage collector shrank while it was idle, and
// a write needs about 3 KB: grown midway through it, the runtime copies the
// stack and adjusts every frame on it, protoactor's included. Grown here,
// the copy has two frames to adjust. CPU profile of 20 broadcasts to 15,000
// streams on one hub, when every turn had a new goroutine: growing the
// stack went from 9.5 % of the hub's CPU to 5.8 %. On a worker whose stack
// is grown already it only clears its frame.
//
//go:noinline
func growStack(i int) byte {
	var pad [stackPad]byte
	pad[i%stackPad] = 1
	return pad[(i+1)%stackPad]
}

// stackPad makes growStack's frame large enough that a 2 KB stack must
// double to 4 KB to hold it.
const stackPad = 2048

func (m *mailbox) pop(q *queue, n *atomic.Int32) (any, bool) {
	if n.Load() == 0 {
		return nil, false
	}
	m.mu.Lock()
	msg, ok := q.pop()
	m.mu.Unlock()
	if ok {
		n.Add(-1)
	}
	return msg, ok
}

// run handles the queued messages, system ones first, until none is left
// or, when limit is above zero, limit user messages have been handled.
func (m *mailbox) run(limit int) {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	throughput := m.dispatcher.Throughput()
	for i := 0; ; i++ {
		if i > throughput {
			i = 0
			runtime.Gosched()
		}
		var ok bool
		if msg, ok = m.pop(&m.sys, &m.sysCount); ok {
			switch msg.(type) {
			case *actor.SuspendMailbox:
				m.suspended.Store(true)
			case *actor.ResumeMailbox:
				m.suspended.Store(false)
			default:
				m.invoker.InvokeSystemMessage(msg)
			}
			continue
		}
		if m.suspended.Load() {
			return
		}
		if msg, ok = m.pop(&m.user, &m.userCount); !ok {
			return
		}
		m.invoker.InvokeUserMessage(msg)
		if limit--; limit == 0 {
			return
		}
	}
}

// queue is a FIFO ring that grows by doubling and shrinks back when a burst
// has drained, so a mailbox that once held a large backlog does not keep its
// memory for the life of the stream.
type queue struct {
	buf        []any
	head, size int
}

const minQueueCap = 8

func (q *queue) push(v any) {
	if q.size == len(q.buf) {
		q.resize(max(minQueueCap, 2*len(q.buf)))
	}
	q.buf[(q.head+q.size)%len(q.buf)] = v
	q.size++
}

func (q *queue) pop() (any, bool) {
	if q.size == 0 {
		return nil, false
	}
	v := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	if len(q.buf) > 1024 && q.size < len(q.buf)/8 {
		q.resize(len(q.buf) / 4)
	}
	return v, true
}

func (q *queue) resize(n int) {
	buf := make([]any, n)
	for i := 0; i < q.size; i++ {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}
