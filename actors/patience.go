package actors

import (
	"sync"
	"sync/atomic"
	"time"
)

// patience ends the wait of a memory-mode publish whose channel actor never
// answers: one that failed with the publish in its mailbox (protoactor
// drops what a stopped actor had queued), or one so far behind that the
// publisher is better off with an answer. It is one timer per hub, not one
// per publish: every period it closes the channel publishers wait on and
// puts a new one in its place, so a publisher that has seen two of them
// close has waited between one period and two.
type patience struct {
	period time.Duration
	tick   atomic.Pointer[chan struct{}]

	mu    sync.Mutex // orders the timer's start, its re-arming and stop
	timer *time.Timer
	done  bool
}

// newPatience returns nil for a period that is not positive: publishes
// then wait until their context ends.
func newPatience(period time.Duration) *patience {
	if period <= 0 {
		return nil
	}
	p := &patience{period: period}
	c := make(chan struct{})
	p.tick.Store(&c)
	p.mu.Lock()
	p.timer = time.AfterFunc(period, p.next)
	p.mu.Unlock()
	return p
}

func (p *patience) next() {
	c := make(chan struct{})
	close(*p.tick.Swap(&c))
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done {
		p.timer.Reset(p.period)
	}
}

// current is the channel that closes at the end of the current period; nil
// (never ready in a select) without patience.
func (p *patience) current() <-chan struct{} {
	if p == nil {
		return nil
	}
	return *p.tick.Load()
}

func (p *patience) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	p.timer.Stop()
}
