package actors

import (
	"context"

	"github.com/squall-sse/squall/sse"
)

// Cluster is what a hub in cluster mode hands its publishes to and reads its
// history from (a redisrelay.Relay). With it, [Hub.Publish] goes through the
// cluster, so every node sees one order and the call site does not change
// between memory and cluster mode: the hub is the one way in.
type Cluster interface {
	Replayer
	// PublishChecked appends the event to its channel's history and sends
	// it to every node, and returns the id every node will send with it.
	// The hub has checked it ([Hub.Check]); the cluster need not again. A
	// non-empty key is an idempotency key: a second publish with the same
	// key on the same channel, within the retention window, is not
	// delivered again and answers the first one's id with Duplicate set.
	//
	// The error says what happened to the event: an error wrapping
	// [ErrOutcomeUnknown] means it may or may not have been taken (a
	// retry with the same key is safe); any other error means it was
	// certainly not taken.
	PublishChecked(ctx context.Context, c Checked, key string) (Published, error)
}

// Published is the outcome of an accepted publish.
type Published struct {
	// ID is the event's id, the same on every node.
	ID string
	// Duplicate is set when the idempotency key had already been used on
	// the channel: the event is the earlier one, not delivered again.
	Duplicate bool
}

// Replayer reads a channel's retained history in cluster mode, where it lives
// outside the process (in Redis) so that any node can replay it.
type Replayer interface {
	// Replay returns a page of the retained events of req.Channel strictly
	// after the resume point, oldest first (see [ReplayRequest] for the
	// page's bounds). More says whether more retained events follow; the
	// next page is asked for with From set to the last event's Pos.
	Replay(ctx context.Context, req ReplayRequest) (Replay, error)
}

// ReplayRequest asks a [Replayer] for one page of a channel's history.
type ReplayRequest struct {
	Channel string
	// LastEventID is the client's resume point, for the first page.
	LastEventID string
	// From, when not zero, continues strictly after this position (the
	// Pos of the last event of the previous page) and LastEventID is
	// ignored.
	From Pos
	// MaxEvents bounds the page's events; zero or negative means 100.
	MaxEvents int
	// MaxBytes bounds the page's events' data, in bytes; zero or negative
	// means 256 KiB. A page holds at least one event whatever its size, so
	// that an event larger than the bound still makes progress.
	MaxBytes int
}

// Replay is the answer of a [Replayer].
type Replay struct {
	Status ReplayStatus
	// Point is the position of the resume point itself when Status is
	// ReplayFound. Events at or before it that are still on their way to
	// this node are then known to be ones the client already has.
	Point  Pos
	Events []ReplayEvent
	// More is set when retained events follow the page's last one.
	More bool
}

// ReplayEvent is one retained event and its position in its channel.
type ReplayEvent struct {
	Pos   Pos
	Event sse.Event
}

// ReplayStatus says whether a resume point was found.
type ReplayStatus int

const (
	// ReplayFound: Events are everything retained after the resume point.
	ReplayFound ReplayStatus = iota
	// ReplayUnknown: the id is not in the history.
	ReplayUnknown
	// ReplayExpired: the id is older than everything retained.
	ReplayExpired
)

// Deliver hands the hub an event whose id and position were decided by the
// cluster. It never blocks. A zero pos means the event has no place in the
// history (it came from a publisher that does not append to it) and is
// delivered live only. An event that [Hub.Check] refuses is dropped and
// logged; a caller that counts refusals (the relay) checks first and calls
// [Hub.DeliverChecked].
func (h *Hub) Deliver(channel string, ev sse.Event, pos Pos) {
	c, err := h.Check(channel, ev)
	if err != nil {
		h.cfg.Logger.Warn("actors: undeliverable event", "channel", channel, "err", err)
		return
	}
	h.DeliverChecked(c, pos)
}

// DeliverChecked is [Hub.Deliver] for an event already checked by
// [Hub.Check]. It panics if c was not built by this hub's Check.
func (h *Hub) DeliverChecked(c Checked, pos Pos) {
	h.mustBeMine(c, "DeliverChecked")
	if h.closed.Load() {
		return
	}
	h.sys.Root.Send(h.router, &deliverMsg{channel: c.channel, ev: c.ev, pos: pos, hasPos: !pos.IsZero(), trace: c.trace})
}
