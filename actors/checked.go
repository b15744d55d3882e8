package actors

import (
	"fmt"

	"github.com/squall-sse/squall/sse"
)

// Checked is an event that a hub has checked for a channel: a valid
// channel name and an event the hub's rules allow (see [Hub.CheckEvent]).
// Only [Hub.Check] builds one, so the layers it is handed to
// ([Hub.PublishChecked], the [Cluster], [Hub.DeliverChecked], the channel
// actor) take it without checking it again. Data is shared, not copied:
// it must not be modified once checked.
type Checked struct {
	hub     *Hub
	channel string
	ev      sse.Event
	trace   Trace // nil unless the publish is traced (see trace.go)
}

// Channel is the channel the event is for.
func (c Checked) Channel() string { return c.channel }

// Event is the event as checked.
func (c Checked) Event() sse.Event { return c.ev }

// Check validates channel and ev where they enter the hub (an HTTP body, a
// message from Redis, a Go call) and returns them as a [Checked], or an
// error wrapping [ErrInvalidPublish] (the channel name or a field is at
// fault) or [ErrEventTooLarge].
func (h *Hub) Check(channel string, ev sse.Event) (Checked, error) {
	if err := sse.ValidChannel(channel); err != nil {
		return Checked{}, fmt.Errorf("%w: %w", ErrInvalidPublish, err)
	}
	if err := h.CheckEvent(ev); err != nil {
		return Checked{}, err
	}
	return Checked{hub: h, channel: channel, ev: ev}, nil
}

// mustBeMine panics unless c was built by h's Check: a zero Checked would
// reach a channel actor named "", and one from another hub was checked
// against other bounds.
func (h *Hub) mustBeMine(c Checked, call string) {
	if c.hub != h {
		panic("actors: " + call + " with a Checked not built by this hub's Check")
	}
}
