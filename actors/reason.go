package actors

import (
	"errors"
	"fmt"
)

// CloseReason says why a stream ended. It is the label of the disconnect
// metrics and the attribute of the close log line.
type CloseReason int

const (
	// ClientGone: the client closed the connection or its request was
	// cancelled.
	ClientGone CloseReason = iota + 1
	// SlowConsumer: the stream's queue passed its bound under the Disconnect
	// policy.
	SlowConsumer
	// WriteTimeout: a flush did not finish within the write timeout.
	WriteTimeout
	// WriteError: a flush failed for another reason.
	WriteError
	// Shutdown: the hub is draining or closed.
	Shutdown
	// Closed: the server side closed the stream (a producer returned, or
	// Stream.Close was called).
	Closed
	// Expired: the credentials that opened the stream expired.
	Expired
	// Disconnected: an operator closed the stream ([Hub.Disconnect]).
	Disconnected
)

var reasonNames = map[CloseReason]string{
	ClientGone:   "client_gone",
	SlowConsumer: "slow_consumer",
	WriteTimeout: "write_timeout",
	WriteError:   "write_error",
	Shutdown:     "shutdown",
	Closed:       "closed",
	Expired:      "expired",
	Disconnected: "disconnected",
}

func (r CloseReason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// CloseReasons lists every reason, for pre-declaring metric labels.
func CloseReasons() []CloseReason {
	return []CloseReason{ClientGone, SlowConsumer, WriteTimeout, WriteError, Shutdown, Closed, Expired, Disconnected}
}

var (
	// ErrClosed is returned by a hub or stream that no longer accepts work.
	ErrClosed = errors.New("actors: closed")
	// ErrOutcomeUnknown is wrapped by a publish error when the event may
	// or may not have been taken (the answer was lost on its way back):
	// a retry with the same idempotency key is safe, one without it may
	// deliver the event twice.
	ErrOutcomeUnknown = errors.New("actors: publish outcome unknown")
	// ErrChannelFailed is wrapped by a publish error when the channel's
	// actor stopped (a bug made it fail) before it took the event: the
	// event was not taken, and a retry goes to a fresh actor.
	ErrChannelFailed = errors.New("actors: channel failed")
)

func errorf(format string, args ...any) error {
	return fmt.Errorf("actors: "+format, args...)
}
