package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/squall-sse/squall/sse"
)

// Every message type implements IgnoreDeadLetterLogging: a message to an actor
// that has just stopped is normal here (a heartbeat tick racing a stop, a
// leave racing a kick), and a logged dead letter would also start protoactor's
// throttle goroutine.

// frame is one encoded event, built once per publish and shared, read-only,
// by every subscriber.
type frame struct {
	b       []byte    // the whole frame, "id:" line first when there is one
	idLen   int       // length of the leading "id: …\n" line, 0 if none
	id      string    // the event's id ("" for comments)
	escID   string    // id escaped for composite ids, built once
	channel string    // the channel it was published on
	pos     Pos       // order within the channel
	at      time.Time // when it was published, for latency metrics
	beat    bool      // a heartbeat, which a busy stream may skip
	key     string    // the publish's idempotency key, "" for none

	trace *traceMark // nil unless the publish is traced (see trace.go)
}

// publishMsg asks a channel actor to assign an id, keep and fan out an event.
type publishMsg struct {
	channel string
	ev      sse.Event
	key     string // idempotency key; "" for none
	trace   Trace  // nil unless traced
	reply   chan publishReply
}

type publishReply struct {
	id        string
	duplicate bool // key was seen: id is the earlier event's
	err       error
}

func (*publishMsg) IgnoreDeadLetterLogging() {}

// deliverMsg hands a channel actor an event whose id and position were
// decided elsewhere (by Redis, in cluster mode).
type deliverMsg struct {
	channel string
	ev      sse.Event
	pos     Pos
	hasPos  bool
	trace   Trace // nil unless traced
}

func (*deliverMsg) IgnoreDeadLetterLogging() {}

// joinMsg subscribes a stream to a channel, resuming after lastID when set.
type joinMsg struct {
	channel   string
	s         *Stream
	lastID    string
	hasLastID bool
	// forwarded, when set, is sent to once the router has passed the join
	// on (see Hub.Open).
	forwarded chan<- struct{}
}

func (*joinMsg) IgnoreDeadLetterLogging() {}

// leaveMsg unsubscribes a stream from a channel.
type leaveMsg struct {
	channel string
	s       *Stream
}

func (*leaveMsg) IgnoreDeadLetterLogging() {}

// idleMsg tells the router that a channel has neither subscribers nor
// replayable history; seen is how many routed messages it has handled, so the
// router stops it only if nothing is in flight towards it.
type idleMsg struct {
	channel string
	seen    uint64
}

func (*idleMsg) IgnoreDeadLetterLogging() {}

// goneMsg tells the router that a channel actor is stopping, so that it
// forgets one its strategy stopped after a failure; for a channel the
// router stopped itself, the entry is already gone or names another actor.
type goneMsg struct {
	channel string
	pid     *actor.PID
}

func (*goneMsg) IgnoreDeadLetterLogging() {}

// tickMsg is a channel's heartbeat or history-expiry timer firing.
type tickMsg struct{}

func (*tickMsg) IgnoreDeadLetterLogging() {}

// replayDone returns a page of a cluster replay to the channel actor that
// asked.
type replayDone struct {
	s      *Stream
	cursor *replayCursor
	result Replay
	err    error
}

func (*replayDone) IgnoreDeadLetterLogging() {}

// flushNow wakes a connection actor to write what its outbox holds.
type flushNow struct{}

func (*flushNow) IgnoreDeadLetterLogging() {}

// flushMore makes a connection actor go on writing what one flush left.
type flushMore struct{}

func (*flushMore) IgnoreDeadLetterLogging() {}

// refillMsg tells a channel actor that a stream it replays into has room
// for the next part of its replay.
type refillMsg struct{ s *Stream }

func (*refillMsg) IgnoreDeadLetterLogging() {}

// closeMsg asks a connection actor to write its final bytes and stop.
type closeMsg struct {
	reason CloseReason
	final  []byte
}

func (*closeMsg) IgnoreDeadLetterLogging() {}

// countMsg asks the router for its number of live channel actors.
type countMsg struct{ reply chan int }

func (*countMsg) IgnoreDeadLetterLogging() {}

var (
	theFlush = &flushNow{}
	theMore  = &flushMore{}
	theTick  = &tickMsg{}
)
