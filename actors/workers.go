package actors

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// workerPool runs mailbox turns on goroutines that outlive them.
//
// protoactor's dispatcher starts a goroutine for every wake-up of an idle
// actor: it is created, its stack grown to what a connection actor's write
// needs (see growStack), and both are given back when the turn ends. With a
// write per event and a few subscribers per channel, that is most of what a
// delivery costs besides the write itself. A turn handed to a worker that
// has finished one before reuses its goroutine and its grown stack, which
// is what the simplest SSE server does with a goroutine per stream parked
// between events, without keeping one per stream.
//
// A burst wakes more actors than there are idle workers: a broadcast wakes
// every subscriber's connection actor at once. Those turns queue in the
// backlog, which every worker drains before it waits for more, so a
// broadcast to 15,000 streams starts a few goroutines rather than one per
// stream (a goroutine's start, stack growth and exit were about 13 % of
// such a broadcast's CPU).
//
// A turn never waits long for a goroutine: a connection actor blocked in
// a write to a stalled client holds its worker, so the backlog is watched
// while it is not empty, and if no worker took a turn from it for a whole
// stallTick, every turn in it gets a goroutine of its own, as under
// protoactor's dispatcher. At most maxIdleWorkers wait for work; the rest
// end once the backlog is empty. Once stopped, the pool keeps none and
// every turn gets its own goroutine.
type workerPool struct {
	// tasks is unbuffered: a send succeeds only into a worker already
	// waiting, which is what run's non-blocking send asks. A nil turn
	// ends the worker that takes it (stop).
	tasks   chan turn
	idle    atomic.Int32
	stopped atomic.Bool

	mu      sync.Mutex   // a leaf: held for one push or pop of backlog
	backlog queue        // of turn: turns no idle worker took
	queued  atomic.Int32 // backlog's size, read without mu by take
	taken   uint64       // turns taken from backlog, ever
	watch   *time.Timer
	seen    uint64 // taken at the watch's last tick
}

// maxIdleWorkers bounds the goroutines kept waiting: enough for the turns
// in flight on a busy hub of many small channels, a few hundred KB of
// stacks at most.
const maxIdleWorkers = 128

// stallTick is how long the backlog may go without a turn taken from it
// before its turns get goroutines of their own: the most a turn waits
// behind workers blocked in writes.
const stallTick = 2 * time.Millisecond

// turn is an actor's turn: a mailbox, which runs its messages. It is an
// interface, not a func, so that a turn queued and taken reaches the
// mailbox itself: a method value bound once is an object of its own,
// one more wait on memory for each of the thousands of turns a broadcast
// queues.
type turn interface{ runTurn() }

func newWorkerPool() *workerPool {
	p := &workerPool{tasks: make(chan turn)}
	p.watch = time.AfterFunc(time.Hour, p.check)
	p.watch.Stop()
	return p
}

// run runs t on an idle worker, or queues it in the backlog and, when
// the backlog was empty, calls spawn, which must start a goroutine that
// calls p.work(nil). It is the caller's so that starting one allocates
// nothing: a go statement with arguments builds a closure.
func (p *workerPool) run(t turn, spawn func()) {
	select {
	case p.tasks <- t:
		return
	default:
	}
	if p.stopped.Load() {
		go t.runTurn()
		return
	}
	p.mu.Lock()
	first := p.backlog.size == 0
	p.backlog.push(t)
	p.queued.Add(1)
	if first {
		p.seen = p.taken
		p.watch.Reset(stallTick)
	}
	p.mu.Unlock()
	if first {
		go spawn()
	}
}

// take pops the oldest turn of the backlog, nil when it is empty. Every
// worker asks after every turn, and the backlog is empty unless a burst
// outran the idle workers, so an empty one costs no lock. A turn queued
// just after the check is not lost: its run saw an empty backlog and
// started a worker for it, or the workers draining the backlog find it.
func (p *workerPool) take() turn {
	if p.queued.Load() == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.backlog.pop()
	if !ok {
		return nil
	}
	p.queued.Add(-1)
	p.taken++
	return t.(turn)
}

// check is the watch's tick: a backlog that no worker took from since the
// last tick is handed out, a new worker per turn.
func (p *workerPool) check() {
	p.mu.Lock()
	if p.backlog.size == 0 {
		p.mu.Unlock()
		return
	}
	if p.taken != p.seen {
		p.seen = p.taken
		p.watch.Reset(stallTick)
		p.mu.Unlock()
		return
	}
	stuck := make([]turn, 0, p.backlog.size)
	for t, ok := p.backlog.pop(); ok; t, ok = p.backlog.pop() {
		stuck = append(stuck, t.(turn))
	}
	p.queued.Store(0)
	p.mu.Unlock()
	for _, t := range stuck {
		go p.work(t)
	}
}

// work runs turn, if any, then the backlog's turns, then waits as an idle
// worker for the next turn, unless maxIdleWorkers wait already.
func (p *workerPool) work(t turn) {
	for {
		if t != nil {
			t.runTurn()
		}
		if t = p.take(); t != nil {
			continue
		}
		// Counted first, checked second: stop, which sets stopped and
		// then waits for the count to reach zero, sees either this
		// worker counted or this worker see stopped.
		if p.idle.Add(1) > maxIdleWorkers || p.stopped.Load() {
			p.idle.Add(-1)
			return
		}
		t = <-p.tasks
		p.idle.Add(-1)
		if t == nil {
			return
		}
	}
}

// stop ends the idle workers, and every other worker when the backlog is
// empty.
func (p *workerPool) stop() {
	p.stopped.Store(true)
	for p.idle.Load() > 0 {
		select {
		case p.tasks <- nil:
		default:
			// A worker counted itself idle and has not reached its
			// receive yet.
			runtime.Gosched()
		}
	}
}
