package redisrelay_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// The relay is what cmd/squall plugs into the hub and the HTTP edge.
var (
	_ actors.Cluster  = (*redisrelay.Relay)(nil)
	_ redisrelay.Sink = (*actors.Hub)(nil)
)

type nopSink struct{}

func (nopSink) Deliver(string, sse.Event, actors.Pos) {}

func TestNewValidatesConfig(t *testing.T) {
	_, err := redisrelay.New(redisrelay.Config{})
	assert.Error(t, err, "no URL")
	_, err = redisrelay.New(redisrelay.Config{URL: "http://nope"})
	assert.Error(t, err, "not a Redis URL")
}

// A relay started before Redis is up reports not ready, then comes up on
// its own once Redis is there.
func TestStartWhileRedisIsDown(t *testing.T) {
	srv := startRedis(t)
	srv.kill()
	a := newNode(t, redisrelay.Config{URL: srv.url()}, actors.Config{})
	require.ErrorIs(t, a.relay.Ready(), redisrelay.ErrNotSubscribed)
	_, err := a.relay.Publish(context.Background(), "a", evData("x"))
	require.Error(t, err)
	srv.start()
	a.requireReady(t)
	c := a.subscribe(t, "channel=a", "")
	a.requireChannels(t, 1)
	a.mustPublish(t, "a", "up")
	c.RequireNext(t, "up")
}

func TestShutdown(t *testing.T) {
	relay, err := redisrelay.New(redisrelay.Config{URL: sharedRedis, Prefix: newPrefix(t, sharedRedis)})
	require.NoError(t, err)
	relay.Start(nil, nopSink{})
	require.Eventually(t, func() bool { return relay.Ready() == nil }, wait, 5*time.Millisecond)
	require.NoError(t, relay.Shutdown(context.Background()))
	require.NoError(t, relay.Shutdown(context.Background()), "idempotent")
	assert.ErrorIs(t, relay.Ready(), redisrelay.ErrClosed)
	_, err = relay.Publish(context.Background(), "a", evData("x"))
	assert.ErrorIs(t, err, redisrelay.ErrClosed)
	_, err = relay.Replay(context.Background(), actors.ReplayRequest{Channel: "a", LastEventID: "1-0"})
	assert.ErrorIs(t, err, redisrelay.ErrClosed)
}

func TestShutdownWithoutStart(t *testing.T) {
	relay, err := redisrelay.New(redisrelay.Config{URL: sharedRedis})
	require.NoError(t, err)
	require.NoError(t, relay.Close())
}

// TestTheRelayActorIsTheHubsChild: started with a hub as its sink, the
// relay actor is a child of the hub's tree, so Hub.Shutdown stops it with
// the rest of the node's actors (before, it lived at the root until
// Relay.Shutdown); a Relay.Shutdown after that still returns at once, and
// the hub's cleanup finds no dead letter and no live actor.
func TestTheRelayActorIsTheHubsChild(t *testing.T) {
	relay, err := redisrelay.New(redisrelay.Config{URL: sharedRedis, Prefix: newPrefix(t, sharedRedis)})
	require.NoError(t, err)
	hub := actorstest.NewHub(t, actors.Config{Cluster: relay})
	sys := hub.System()
	before := actorstest.LiveActors(sys)
	relay.Start(nil, hub)
	require.Eventually(t, func() bool { return relay.Ready() == nil }, wait, 5*time.Millisecond)
	require.Equal(t, before+1, actorstest.LiveActors(sys), "the relay actor lives in the hub's system")

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, hub.Shutdown(ctx))
	// The hub's tree (hub actor, streams supervisor, router) and the relay.
	assert.Equal(t, before-3, actorstest.LiveActors(sys), "Hub.Shutdown stopped the relay actor too")
	require.NoError(t, relay.Shutdown(ctx))
}
