package actors

import (
	"context"

	"github.com/squall-sse/squall/httpedge/sse"
)

// Cluster is what a hub in cluster mode hands its publishes to and reads its
// history from (a redisrelay.Relay). With it, [Hub.Publish] goes through the
// cluster, so every node sees one order and the call site does not change
// between memory and cluster mode.
type Cluster interface {
	Replayer
	// Publish appends ev to channel's history and sends it to every node,
	// and returns the id every node will send with it.
	Publish(ctx context.Context, channel string, ev sse.Event) (string, error)
}

// Replayer reads a channel's retained history in cluster mode, where it lives
// outside the process (in Redis) so that any node can replay it.
type Replayer interface {
	// Replay returns the retained events of channel strictly after the event
	// whose id is lastID, oldest first.
	Replay(ctx context.Context, channel, lastID string) (Replay, error)
}

// Replay is the answer of a [Replayer].
type Replay struct {
	Status ReplayStatus
	// Point is the position of the resume point itself when Status is
	// ReplayFound. Events at or before it that are still on their way to
	// this node are then known to be ones the client already has.
	Point  Pos
	Events []ReplayEvent
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
// cluster (the relay calls it for every message from Redis). It never blocks.
// A zero pos means the event has no place in the history (it came from a
// publisher that does not append to it) and is delivered live only.
func (h *Hub) Deliver(channel string, ev sse.Event, pos Pos) {
	if h.closed.Load() {
		return
	}
	h.sys.Root.Send(h.router, &deliverMsg{channel: channel, ev: ev, pos: pos, hasPos: !pos.IsZero()})
}
