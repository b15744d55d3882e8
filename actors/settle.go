package actors

import (
	"fmt"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
)

// settleUnhandled answers, in place of a channel actor, a message it will
// never handle: one still queued when it stopped, one posted after, one
// that went to dead letters, or one the router has no actor for. The event of such a publish was certainly not
// taken, so its publisher is told at once rather than when its patience
// runs out (ErrOutcomeUnknown is for the one message the actor was
// handling when it failed). A stream whose join is lost is closed like the
// channel's subscribers (Shutdown), so that its client reconnects and
// resumes instead of waiting on a channel that never feeds it; a presence
// query counts none, which is what is left.
func (h *Hub) settleUnhandled(msg any) {
	switch m := msg.(type) {
	case *publishMsg:
		// A direct stream's own channel stops with its stream, and every
		// channel with the hub: ErrClosed. Otherwise the channel failed.
		err := ErrClosed
		if m.channel != "" && !h.closed.Load() {
			err = fmt.Errorf("%w: channel %q stopped before it took the event", ErrChannelFailed, m.channel)
		}
		m.reply <- publishReply{err: err}
	case *joinMsg:
		m.s.kill(Shutdown)
	case *subsQuery:
		m.reply <- subsCount{i: m.i}
	}
}

// settleDeadLetters settles the messages for this hub's channel actors that
// were sent once the actor had left the registry: a sender that found the
// channel in Hub.chans just before it failed, or a direct stream's
// publish racing its end. Other hubs of the same actor system settle their
// own, told apart by the PID's place in the tree.
func (h *Hub) settleDeadLetters() *eventstream.Subscription {
	prefix := h.top.Id + "/"
	return h.sys.EventStream.Subscribe(func(ev any) {
		if dl, ok := ev.(*actor.DeadLetterEvent); ok && dl.PID != nil && strings.HasPrefix(dl.PID.Id, prefix) {
			h.settleUnhandled(dl.Message)
		}
	})
}
