package actors_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/sse"
)

// Check is the one screen of a publish: what it refuses never becomes a
// Checked, and what it builds carries the channel and event as given.
func TestCheckBuildsTheOnlyTrustedForm(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{Heartbeat: -1, MaxQueueBytes: 1 << 10})
	c, err := h.Check("c", sse.Event{Data: []byte("x"), Event: "e", ID: "1"})
	require.NoError(t, err, "Check of a valid event")
	assert.Equal(t, "c", c.Channel())
	assert.Equal(t, sse.Event{Data: []byte("x"), Event: "e", ID: "1"}, c.Event())

	_, err = h.Check("bad name!", sse.Event{})
	assert.ErrorIs(t, err, actors.ErrInvalidPublish, "Check of a bad channel name")
	assert.ErrorIs(t, err, sse.ErrInvalidChannel, "Check of a bad channel name")
	_, err = h.Check("c", sse.Event{Event: actors.ResetEvent})
	assert.ErrorIs(t, err, actors.ErrInvalidPublish, "Check of a reserved event name")
	_, err = h.Check("c", sse.Event{Data: []byte(strings.Repeat("x", 1<<10))})
	assert.ErrorIs(t, err, actors.ErrEventTooLarge, "Check of a frame over MaxQueueBytes")
}

// A Checked that Check did not build (the zero value, or one checked by
// another hub against other bounds) is a programming error: the hub
// panics rather than trust it.
func TestPublishCheckedTakesOnlyItsOwnChecks(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{Heartbeat: -1})
	other := actorstest.NewHub(t, actors.Config{Heartbeat: -1, MaxQueueBytes: -1})
	foreign, err := other.Check("c", sse.Event{Data: []byte("x")})
	require.NoError(t, err)

	assert.PanicsWithValue(t, "actors: PublishChecked with a Checked not built by this hub's Check", func() {
		_, _ = h.PublishChecked(t.Context(), actors.Checked{}, "")
	}, "PublishChecked of a zero Checked")
	assert.Panics(t, func() { _, _ = h.PublishChecked(t.Context(), foreign, "") }, "PublishChecked of another hub's Checked")
	assert.Panics(t, func() { h.DeliverChecked(foreign, actors.Pos{Ms: 1}) }, "DeliverChecked of another hub's Checked")
	assert.Zero(t, h.Channels(), "nothing reached a channel")
}

// Deliver is a Go entry too: an event Check refuses (here a frame no
// stream could queue) is dropped where it enters, and the stream gets the
// next one.
func TestDeliverDropsWhatCheckRefuses(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{Heartbeat: -1, History: -1, MaxQueueBytes: 1 << 10})
	w := openTimed(t, h, actors.StreamOptions{Channels: []string{"c"}})
	// Join is queued at the router before these, so the stream hears both.
	h.Deliver("c", sse.Event{Data: []byte(strings.Repeat("x", 1<<10)), ID: "1-0"}, actors.Pos{Ms: 1})
	h.Deliver("c", sse.Event{Data: []byte("fits"), ID: "2-0"}, actors.Pos{Ms: 2})
	var got []string
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, wr := range w.snapshot() {
			got = append(got, wr.datas()...)
		}
		return len(got) > 0
	}, 5*time.Second, time.Millisecond, "the event that fits is written")
	assert.Equal(t, []string{"fits"}, got, "the oversize event never reached the stream")
}
