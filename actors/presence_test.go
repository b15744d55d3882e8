package actors_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/sse"
)

// TestPresenceListsHistoryOnlyChannels: in memory mode a channel that keeps
// history lives without streams, and is listed with 0; a page counts a
// stream on two channels on each.
func TestPresenceListsHistoryOnlyChannels(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{Heartbeat: -1})
	ctx := context.Background()
	_, err := h.Publish(ctx, "kept", sse.Event{Data: []byte("x")})
	require.NoError(t, err)
	s, err := h.Open(&discardWriter{header: http.Header{}}, actors.StreamOptions{Channels: []string{"a", "b"}, Subject: "u"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		p, err := h.Presence(ctx, actors.PresenceQuery{Limit: 10})
		return err == nil && len(p.Channels) == 3 && p.Channels[0].Subscribers == 1 && p.Channels[1].Subscribers == 1
	}, 5*time.Second, time.Millisecond)
	p, err := h.Presence(ctx, actors.PresenceQuery{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, actors.PresencePage{Channels: []actors.ChannelPresence{{Channel: "a", Subscribers: 1}, {Channel: "b", Subscribers: 1}, {Channel: "kept"}}}, p)

	n, err := h.Disconnect(ctx, actors.DisconnectMatch{Subject: "u"}, actors.DisconnectNotice{Reason: "r"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	<-s.Done()
	assert.Equal(t, actors.Disconnected, s.Reason())
	n, err = h.Disconnect(ctx, actors.DisconnectMatch{Subject: "u"}, actors.DisconnectNotice{Reason: "r"})
	require.NoError(t, err)
	assert.Equal(t, 0, n, "a closed stream is not matched again")
}

func TestPresenceMisusePanics(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{})
	ctx := context.Background()
	assert.Panics(t, func() { _, _ = h.Presence(ctx, actors.PresenceQuery{Limit: 0}) })
	assert.Panics(t, func() { _, _ = h.Presence(ctx, actors.PresenceQuery{Limit: actors.MaxPresenceLimit + 1}) })
	assert.Panics(t, func() { _, _ = h.Disconnect(ctx, actors.DisconnectMatch{}, actors.DisconnectNotice{}) })
}

// BenchmarkPresence reads a page of a hub's channels: the router's scan of
// its table (what limit=10 measures) and a query to each channel on the
// page (what limit=1000 adds).
func BenchmarkPresence(b *testing.B) {
	for _, c := range []struct{ channels, limit int }{{1000, 10}, {10000, 10}, {1000, 1000}, {10000, 1000}} {
		b.Run(fmt.Sprintf("channels=%d/limit=%d", c.channels, c.limit), func(b *testing.B) {
			n := c.channels
			h := actorstest.NewHub(b, actors.Config{Heartbeat: -1})
			ctx := context.Background()
			for i := range n {
				_, err := h.Publish(ctx, fmt.Sprintf("ch:%06d", i), sse.Event{Data: []byte("x")})
				require.NoError(b, err)
			}
			q := actors.PresenceQuery{Limit: c.limit}
			b.ReportAllocs()
			for b.Loop() {
				p, err := h.Presence(ctx, q)
				if err != nil || len(p.Channels) != min(n, q.Limit) {
					b.Fatal(err, len(p.Channels))
				}
			}
		})
	}
}
