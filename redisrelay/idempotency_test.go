package redisrelay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// A repeated idempotency key on a channel publishes nothing and answers the
// first id; the key is per channel and expires after the window.
func TestPublishOnceIdempotent(t *testing.T) {
	for _, history := range []int{0, -1} {
		t.Run(fmt.Sprintf("history=%d", history), func(t *testing.T) {
			a, b := twoNodes(t, redisrelay.Config{History: history, HistoryTTL: time.Minute})
			c := b.subscribe(t, "channel=a", "")
			b.requireChannels(t, 1)
			ctx := context.Background()
			first, err := a.relay.PublishOnce(ctx, "a", evData("one"), "k")
			require.NoError(t, err)
			assert.False(t, first.Duplicate)
			again, err := b.relay.PublishOnce(ctx, "a", evData("one, again"), "k")
			require.NoError(t, err)
			assert.Equal(t, actors.Published{ID: first.ID, Duplicate: true}, again, "from the other hub too")
			given, err := a.relay.PublishOnce(ctx, "a", sse.Event{ID: "pub-2", Data: []byte("two")}, "k2")
			require.NoError(t, err)
			assert.Equal(t, "pub-2", given.ID)
			dup, err := a.relay.PublishOnce(ctx, "a", evData("two"), "k2")
			require.NoError(t, err)
			assert.Equal(t, actors.Published{ID: "pub-2", Duplicate: true}, dup, "the publisher's id is the answer")
			other, err := a.relay.PublishOnce(ctx, "b", evData("elsewhere"), "k")
			require.NoError(t, err)
			assert.False(t, other.Duplicate, "keys are per channel")

			a.mustPublish(t, "a", "end")
			assert.Equal(t, []string{"one", "two", "end"}, ssetest.Data(c.NextN(t, 3)), "each event once")
			ttl, err := rawClient(t, sharedRedis).PTTL(ctx, a.relay.Prefix()+":idem:a|k").Result()
			require.NoError(t, err)
			assert.True(t, ttl > 50*time.Second && ttl <= time.Minute, "the key lasts the window (HistoryTTL): %v", ttl)
		})
	}
}
