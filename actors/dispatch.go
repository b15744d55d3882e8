package actors

import (
	"context"
	"runtime"
	"sync"
)

// workers is the actor.Dispatcher of connection actors: a few long-lived
// goroutines run mailboxes, and a mailbox scheduled while none of them is
// idle gets a goroutine of its own, as with protoactor's default dispatcher.
//
// Why: a flush runs deep in net/http's write path and needs an 8 KB stack. A
// fresh goroutine per flush starts small and grows (copying its stack) on
// every flush, or, with the runtime's adaptive initial stack size, makes
// every goroutine start larger, including the one net/http keeps per idle
// connection. A worker grows once. The spill-over keeps the default's
// guarantee that a write blocked on one client (up to the write timeout)
// never holds up another: a busy worker is simply not idle.
type workers struct {
	work chan func() // unbuffered: a send succeeds only into an idle worker
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newWorkers() *workers {
	w := &workers{work: make(chan func()), done: make(chan struct{})}
	n := max(4, 4*runtime.GOMAXPROCS(0))
	w.wg.Add(n)
	for range n {
		go w.loop()
	}
	return w
}

func (w *workers) loop() {
	defer w.wg.Done()
	for {
		select {
		case fn := <-w.work:
			fn()
		case <-w.done:
			return
		}
	}
}

func (w *workers) Schedule(fn func()) {
	select {
	case w.work <- fn:
	default:
		go fn()
	}
}

// Throughput is how many messages a mailbox handles before it yields.
func (w *workers) Throughput() int { return 300 }

// stop ends the workers once they finish what they run, or returns ctx's
// error first. Mailboxes scheduled afterwards get their own goroutines.
func (w *workers) stop(ctx context.Context) error {
	w.once.Do(func() { close(w.done) })
	finished := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
