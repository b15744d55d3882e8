package actors

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/squall-sse/squall/sse"
)

var (
	// ErrInvalidPublish is wrapped by a publish's error when the event
	// itself is at fault (a field the wire format cannot carry, a reserved
	// event name, an id over [MaxEventID]): it was not taken, and the same
	// publish will never be. The HTTP edge answers 400, never 503.
	ErrInvalidPublish = errors.New("actors: invalid publish")
	// ErrEventTooLarge is wrapped by a publish's error when the event's
	// frame is bigger than [Hub.MaxFrame]: no stream could ever queue it,
	// so it was not taken. The HTTP edge answers 413.
	ErrEventTooLarge = errors.New("actors: event frame over the stream queue bound")
)

// ResetEvent is the name of the event the hub sends a resuming stream whose
// Last-Event-ID is unknown or expired. A publisher cannot use it: a client
// must be able to trust that a reset comes from the hub.
const ResetEvent = "reset"

// ReservedEventPrefix starts every event name the hub keeps for its own
// control events, present and future; a publish with such a name is
// refused. The configured [Config.HeartbeatEvent] and [ResetEvent] are
// reserved too.
const ReservedEventPrefix = "squall-"

// ReservedEvent reports whether name is one a publisher may never use
// whatever the configuration: [ResetEvent] and names starting with
// [ReservedEventPrefix]. [Hub.CheckEvent] also refuses the hub's
// heartbeat event name.
func ReservedEvent(name string) bool {
	return name == ResetEvent || strings.HasPrefix(name, ReservedEventPrefix)
}

// MaxEventID bounds a publisher's event id, in bytes. It is [sse.MaxID],
// the bound the HTTP edge also puts on Last-Event-ID and a relay on an id
// read from Redis, named here for the hub's callers.
const MaxEventID = sse.MaxID

// maxAssignedID is the longest id the hub or Redis assigns: a [Pos],
// "<ms>-<seq>", two uint64 of at most 20 digits each. A publish without an
// id is sized as if it got the longest, so the answer does not depend on
// the clock or on the mode.
const maxAssignedID = 20 + 1 + 20

// MaxFrame is the largest frame, in bytes, an event may encode to:
// [Config.MaxQueueBytes], so that a frame the hub accepts always fits an
// empty stream queue and reaches every subscriber that keeps up, whatever
// the overflow policy. Zero means no bound (MaxQueueBytes negative).
func (h *Hub) MaxFrame() int {
	if h.cfg.MaxQueueBytes < 0 {
		return 0
	}
	return h.cfg.MaxQueueBytes
}

// CheckEvent reports whether the hub would take ev: nil, or an error
// wrapping [ErrInvalidPublish] (an invalid field, a reserved event name, an
// id over [MaxEventID], a retry over [sse.MaxRetry], bytes that are not
// UTF-8) or [ErrEventTooLarge] (its frame, with the longest id the hub
// could assign when ev.ID is empty, is over [Hub.MaxFrame]).
// [Hub.Check] runs it where an event enters (the HTTP edge on a body, the
// relay on a message from Redis, [Hub.PublishOnce] and [Hub.Deliver] on a
// Go call), so that an event no subscriber can receive is refused or
// dropped there, never queued; it is also the screen of [Stream.Publish],
// whose events have no channel.
func (h *Hub) CheckEvent(ev sse.Event) error {
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPublish, err)
	}
	if ReservedEvent(ev.Event) || (h.cfg.HeartbeatEvent != "" && ev.Event == h.cfg.HeartbeatEvent) {
		return fmt.Errorf("%w: event name %q is reserved for the hub's own events (%q, the heartbeat's name, names starting with %q)",
			ErrInvalidPublish, ev.Event, ResetEvent, ReservedEventPrefix)
	}
	if len(ev.ID) > MaxEventID {
		return fmt.Errorf("%w: id over %d bytes", ErrInvalidPublish, MaxEventID)
	}
	// A relay refuses an envelope whose retry is over the bound: taken
	// here, such an event would be stored in cluster mode and then dropped
	// by every hub.
	if ev.Retry > sse.MaxRetry {
		return fmt.Errorf("%w: retry over %v", ErrInvalidPublish, sse.MaxRetry)
	}
	// An event stream is UTF-8: a browser would turn invalid bytes into
	// U+FFFD, and cluster mode cannot carry them in its JSON envelope, so
	// both modes refuse them alike.
	if !utf8.Valid(ev.Data) || !utf8.ValidString(ev.Event) || !utf8.ValidString(ev.ID) {
		return fmt.Errorf("%w: data, event and id must be valid UTF-8", ErrInvalidPublish)
	}
	if bound := h.MaxFrame(); bound > 0 {
		n := sse.EncodedLen(ev)
		if ev.ID == "" {
			n += len("id: ") + maxAssignedID + len("\n")
		}
		if n > bound {
			return fmt.Errorf("%w: the event frames to %d bytes, over the %d-byte bound "+
				"(MaxQueueBytes; each line of data adds 6 bytes)", ErrEventTooLarge, n, bound)
		}
	}
	return nil
}
