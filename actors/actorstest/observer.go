package actorstest

import (
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
