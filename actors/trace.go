package actors

import "sync/atomic"

// Trace is what a traced publish carries through the hub, for a tracing
// layer the hub knows nothing about (the HTTP edge and the relay build it
// from OpenTelemetry; this package imports no tracing library). Only a
// publish that is being traced carries one: without tracing, every
// [Checked] holds nil and the hub does no work for it.
//
// Its methods are called from actor goroutines and must not block.
type Trace interface {
	// FannedOut is called by the channel actor once it has queued the
	// event for the subscribers it has on this node (0: none).
	FannedOut(subscribers int)
	// Delivered is called once, by the first connection actor whose
	// write carrying the event completed without error.
	Delivered()
}

// WithTrace returns c carrying t (nil: none) to the channel actor and to
// the writes of the event's frame.
func (c Checked) WithTrace(t Trace) Checked {
	c.trace = t
	return c
}

// Trace is what [Checked.WithTrace] attached, or nil.
func (c Checked) Trace() Trace { return c.trace }

// traceMark is a traced frame's link to its Trace: one per frame, shared by
// the connection actors that write it, so that only the first is told.
type traceMark struct {
	t    Trace
	done atomic.Bool
}

// markTrace attaches t to f (a fresh frame) when t is set.
func markTrace(f *frame, t Trace) {
	if f != nil && t != nil {
		f.trace = &traceMark{t: t}
	}
}

// fannedOut tells f's Trace how many subscribers it was queued for.
func (f *frame) fannedOut(subscribers int) {
	if f.trace != nil {
		f.trace.t.FannedOut(subscribers)
	}
}

// delivered tells the Trace of every traced frame in fs, the first time
// only, that a write carrying it completed.
func delivered(fs []*frame) {
	for _, f := range fs {
		if f.trace != nil && f.trace.done.CompareAndSwap(false, true) {
			f.trace.t.Delivered()
		}
	}
}
