package actors

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/sse"
)

// A publish sent to a channel actor that has already left the registry (a
// sender that found it in Hub.chans just before it failed) becomes a dead
// letter: its hub answers it at once, and only its hub, though two hubs
// share the actor system. Before, it waited out its patience.
func TestPublishToAGoneChannelIsSettledOnce(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	defer sys.Shutdown()
	cfg := Config{System: sys, History: 4, Heartbeat: -1, PublishPatience: time.Minute}
	h, other := New(cfg), New(cfg)
	defer func() {
		for _, hub := range []*Hub{h, other} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			assert.NoError(t, hub.Shutdown(ctx))
			cancel()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := h.Publish(ctx, "kept", sse.Event{Data: []byte("one")})
	require.NoError(t, err)
	// The router publishes the channel after it forwarded the publish, so
	// the answer can come first.
	var pid *actor.PID
	require.Eventually(t, func() bool {
		h.chansMu.RLock()
		defer h.chansMu.RUnlock()
		if c := h.chans["kept"]; c != nil {
			pid = c.pid
		}
		return pid != nil
	}, 5*time.Second, time.Millisecond)
	stopChild(sys, pid)
	require.Eventually(t, func() bool { _, alive := sys.ProcessRegistry.Get(pid); return !alive }, 5*time.Second, time.Millisecond)

	m := &publishMsg{channel: "kept", ev: sse.Event{Data: []byte("two")}}
	_, err = h.request(ctx, pid, m)
	require.ErrorIs(t, err, ErrChannelFailed, "answered as not taken, without waiting")
	assert.Empty(t, m.reply, "no second answer from the other hub")

	_, err = h.Publish(ctx, "kept", sse.Event{Data: []byte("three")})
	require.NoError(t, err, "the channel serves again")
}
