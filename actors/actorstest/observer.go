package actorstest

import (
	"sync/atomic"
	"time"

	"github.com/squall-sse/squall/actors"
)

// NopObserver is an [actors.Observer] that ignores everything: embed it in
// a test's observer to implement only the calls the test counts.
type NopObserver struct{}

var _ actors.Observer = NopObserver{}

func (NopObserver) StreamOpened()                   {}
func (NopObserver) StreamClosed(actors.CloseReason) {}
func (NopObserver) Published(string)                {}
func (NopObserver) Flushed(int, time.Duration)      {}
func (NopObserver) Dropped(int)                     {}
func (NopObserver) Resumed(bool)                    {}
func (NopObserver) ChannelsChanged(int)             {}

// FailingChannel makes the channel actor of Channel panic on its first
// event, as a bug in a channel actor would: for tests of what the hub does
// when one fails.
type FailingChannel struct {
	NopObserver
	Channel string
	// Held, when set, is closed once the failing event is in the channel
	// actor, and the actor then waits for Release to close before it
	// panics: a test queues messages behind the failure meanwhile.
	Held, Release chan struct{}
	fired         atomic.Bool
}

// Published panics the first time an event is published on f.Channel.
func (f *FailingChannel) Published(channel string) {
	if channel == f.Channel && f.fired.CompareAndSwap(false, true) {
		if f.Held != nil {
			close(f.Held)
			<-f.Release
		}
		panic("actorstest: FailingChannel " + channel)
	}
}
