package actors_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/sse"
)

// The hub takes an event at the id and retry bounds of package sse and
// refuses one past them, in memory mode as a relay does on what it reads
// from Redis: an event the hub takes in cluster mode is never one every
// hub's relay then drops as malformed.
func TestCheckEventBounds(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{Heartbeat: -1})
	assert.NoError(t, h.CheckEvent(sse.Event{ID: strings.Repeat("x", sse.MaxID), Retry: sse.MaxRetry}), "CheckEvent at the bounds")
	for _, tt := range []struct {
		name string
		ev   sse.Event
	}{
		{"id over the bound", sse.Event{ID: strings.Repeat("x", sse.MaxID+1)}},
		{"retry over the bound", sse.Event{Retry: sse.MaxRetry + time.Millisecond}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, h.CheckEvent(tt.ev), actors.ErrInvalidPublish, "CheckEvent")
			_, err := h.Publish(t.Context(), "c", tt.ev)
			assert.ErrorIs(t, err, actors.ErrInvalidPublish, "Publish")
		})
	}
	assert.Zero(t, h.Channels(), "a refused publish starts no channel actor")
}

// A Go caller's bad channel name is refused in memory mode as at the edge
// and in cluster mode, before any channel actor exists for it.
func TestPublishRefusesInvalidChannelNames(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{Heartbeat: -1})
	for _, name := range []string{"", "bad name!", strings.Repeat("x", sse.MaxChannel+1)} {
		_, err := h.Publish(t.Context(), name, sse.Event{Data: []byte("x")})
		assert.ErrorIs(t, err, actors.ErrInvalidPublish, "Publish to %q", name)
		assert.ErrorIs(t, err, sse.ErrInvalidChannel, "Publish to %q", name)
	}
	assert.Zero(t, h.Channels(), "a refused publish starts no channel actor")
}
