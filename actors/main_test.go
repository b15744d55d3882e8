package actors_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/squall-sse/squall/actors"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type nopObserver struct{}

func (nopObserver) StreamOpened()                   {}
func (nopObserver) StreamClosed(actors.CloseReason) {}
func (nopObserver) Published(string)                {}
func (nopObserver) Flushed(int, time.Duration)      {}
func (nopObserver) Dropped(int)                     {}
func (nopObserver) Resumed(bool)                    {}
func (nopObserver) ChannelsChanged(int)             {}
