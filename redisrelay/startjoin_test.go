package redisrelay_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// dataSink passes on the data of what the relay delivers.
type dataSink chan string

func (s dataSink) Deliver(_ string, ev sse.Event, _ actors.Pos) { s <- string(ev.Data) }

// A channel joined the moment a relay starts (a restarted hub whose
// clients reconnect at once) is caught up from its join as Redis dates it:
// an event published before the join is not delivered, as it would be if
// the catch-up read from a guess of the clock (a second back), handing a
// new stream an event it did not ask for and a reconnecting one a
// duplicate.
func TestChannelJoinedAtStartGetsNothingFromBeforeTheJoin(t *testing.T) {
	prefix := newPrefix(t, sharedRedis)
	ctx := context.Background()
	pub, err := redisrelay.New(redisrelay.Config{URL: sharedRedis, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	_, err = pub.Publish(ctx, "c", sse.Event{Data: []byte("before")})
	require.NoError(t, err)
	// The gap under test, well over any measured skew and well under the
	// one a join falls back to without a measure.
	<-time.After(100 * time.Millisecond)

	r, err := redisrelay.New(redisrelay.Config{URL: sharedRedis, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	got := make(dataSink, 16)
	r.Start(nil, got)
	r.Join("c")
	require.Eventually(t, func() bool { return r.Listening("c") }, wait, time.Millisecond)
	_, err = pub.Publish(ctx, "c", sse.Event{Data: []byte("after")})
	require.NoError(t, err)
	select {
	case d := <-got:
		require.Equal(t, "after", d, "the first event delivered is the first published after the join")
	case <-time.After(wait):
		t.Fatal("nothing delivered")
	}
}
