package actors

import (
	"runtime"
	"sync/atomic"
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
// A turn never waits for a worker: when none is idle it gets a goroutine of
// its own, as under protoactor's dispatcher, so a connection actor blocked
// in a write to a stalled client holds one goroutine and no one else's
// turn. At most maxIdleWorkers wait for work; the rest end with their
// turn. Once stopped, the pool keeps none and every turn gets its own
// goroutine.
type workerPool struct {
	// tasks is unbuffered: a send succeeds only into a worker already
	// waiting, which is what run's non-blocking send asks. A nil turn
	// ends the worker that takes it (stop).
	tasks   chan func()
	idle    atomic.Int32
	stopped atomic.Bool
}

// maxIdleWorkers bounds the goroutines kept waiting: enough for the turns
// in flight on a busy hub of many small channels, a few hundred KB of
// stacks at most.
const maxIdleWorkers = 128

func newWorkerPool() *workerPool {
	return &workerPool{tasks: make(chan func())}
}

// run runs turn on an idle worker, or calls spawn, which must start a
// goroutine that calls p.work(turn). It is the caller's so that starting
// one allocates nothing: a go statement with arguments builds a closure.
func (p *workerPool) run(turn, spawn func()) {
	select {
	case p.tasks <- turn:
	default:
		go spawn()
	}
}

func (p *workerPool) work(turn func()) {
	for turn != nil {
		turn()
		// Counted first, checked second: stop, which sets stopped and
		// then waits for the count to reach zero, sees either this
		// worker counted or this worker see stopped.
		if p.idle.Add(1) > maxIdleWorkers || p.stopped.Load() {
			p.idle.Add(-1)
			return
		}
		turn = <-p.tasks
		p.idle.Add(-1)
	}
}

// stop ends the idle workers, and every other worker when its turn ends.
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
