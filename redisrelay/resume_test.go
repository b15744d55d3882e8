package redisrelay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/redisrelay"
)

func TestResumeOnTheOtherHub(t *testing.T) {
	for _, given := range []bool{false, true} {
		t.Run(fmt.Sprintf("publisher ids=%v", given), func(t *testing.T) {
			a, b := twoNodes(t, redisrelay.Config{})
			pub := func(n *node, i int) {
				if given {
					n.mustPublish(t, "a", strconv.Itoa(i), "id", fmt.Sprintf("evt-%d", i))
				} else {
					n.mustPublish(t, "a", strconv.Itoa(i))
				}
			}
			c := a.subscribe(t, "channel=a", "")
			a.requireChannels(t, 1)
			for i := range 3 {
				pub(a, i)
			}
			got := c.NextN(t, 3)
			c.Close()
			for i := 3; i < 53; i++ {
				pub([]*node{a, b}[i%2], i)
			}
			c2 := b.subscribe(t, "channel=a", got[2].ID)
			assert.Equal(t, upTo(3, 53), seqs(t, c2.NextN(t, 50)), "exactly the missed events, in order")
			pub(a, 53)
			c2.RequireNext(t, "53")
			assert.Empty(t, c2.Events, "no duplicate")
		})
	}
}

// A client reconnects five times, alternating hubs, while a publisher keeps
// going: the concatenation of what it read is every event once, in order.
func TestResumeWhilePublishesContinue(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{})
	nodes := []*node{a, b}
	c := a.subscribe(t, "channel=a", "")
	a.requireChannels(t, 1)
	var published atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			nodes[i%2].mustPublish(t, "a", strconv.Itoa(i))
			published.Store(int64(i + 1))
		}
	})
	var got []int
	for round := range 5 {
		evs := c.NextN(t, 20)
		got = append(got, seqs(t, evs)...)
		c.Close()
		c = nodes[(round+1)%2].subscribe(t, "channel=a", evs[len(evs)-1].ID)
	}
	close(stop)
	wg.Wait()
	total := int(published.Load())
	for len(got) < total {
		got = append(got, seqs(t, c.NextN(t, 1))...)
	}
	assert.Equal(t, upTo(0, total), got, "every event once, in order, across 5 reconnects")
}

func TestResumeTwoChannels(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{})
	c := a.subscribe(t, "channel=x&channel=y", "")
	a.requireChannels(t, 2)
	a.mustPublish(t, "x", "x0")
	a.mustPublish(t, "y", "y0")
	evs := c.NextN(t, 2)
	c.Close()
	b.mustPublish(t, "y", "y1")
	a.mustPublish(t, "x", "x1")
	b.mustPublish(t, "y", "y2")
	c2 := b.subscribe(t, "channel=x&channel=y", evs[1].ID)
	var x, y []string
	for _, d := range ssetest.Data(c2.NextN(t, 3)) {
		if d[0] == 'x' {
			x = append(x, d)
		} else {
			y = append(y, d)
		}
	}
	assert.Equal(t, []string{"x1"}, x)
	assert.Equal(t, []string{"y1", "y2"}, y)
}

func requireReset(t *testing.T, c *client, reason string) {
	t.Helper()
	ev := c.Next(t)
	require.Equal(t, "reset", ev.Event, "first event is a reset, got %q", ev.Data)
	var r map[string]string
	require.NoError(t, json.Unmarshal(ev.Data, &r))
	assert.Equal(t, reason, r["reason"])
}

func TestHistoryCountBound(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{History: 5})
	// Each case has its own channel with ten events, of which five are kept.
	publish10 := func(channel string) []string {
		var ids []string
		for i := range 10 {
			ids = append(ids, []*node{a, b}[i%2].mustPublish(t, channel, strconv.Itoa(i)))
		}
		return ids
	}
	n, err := rawClient(t, sharedRedis).XLen(t.Context(), a.relay.StreamKey("len")).Result()
	require.NoError(t, err)
	require.Zero(t, n)
	publish10("len")
	n, err = rawClient(t, sharedRedis).XLen(t.Context(), a.relay.StreamKey("len")).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 6, n, "the stream keeps History entries and the one before them")

	tests := []struct {
		name   string
		lastID func(ids []string) string
		reason string
		want   []string
	}{
		{name: "unknown id", lastID: func([]string) string { return "no-such-id" }, reason: "unknown id"},
		{name: "stream id from elsewhere", lastID: func([]string) string { return "99999999999999-0" }, reason: "unknown id"},
		{name: "older than the history", lastID: func(ids []string) string { return ids[3] }, reason: "id older than the retained history"},
		{name: "the last one dropped is a valid point", lastID: func(ids []string) string { return ids[4] },
			want: []string{"5", "6", "7", "8", "9"}},
		{name: "the newest", lastID: func(ids []string) string { return ids[9] }, want: []string{}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			channel := fmt.Sprintf("c%d", i)
			ids := publish10(channel)
			c := b.subscribe(t, "channel="+channel, tt.lastID(ids))
			if tt.reason == "" {
				// The replay first: the stream looks its resume point up
				// after it opens, and a publish before that lookup would
				// move the oldest resume point out of the window (a reset,
				// rightly).
				got := ssetest.Data(c.NextN(t, len(tt.want)))
				a.mustPublish(t, channel, "live")
				assert.Equal(t, tt.want, got)
				c.RequireNext(t, "live")
				return
			}
			a.mustPublish(t, channel, "live")
			requireReset(t, c, tt.reason)
			// A reset starts the stream live from the moment the channel
			// learned of it, so events published just before it connected
			// and still on their way from Redis may come before "live": never
			// out of order, never twice.
			last := -1
			for {
				d := string(c.Next(t).Data)
				if d == "live" {
					break
				}
				n, err := strconv.Atoi(d)
				require.NoError(t, err, "only events of the channel: %q", d)
				require.Greater(t, n, last, "in order, once")
				last = n
			}
		})
	}
}

func TestHistoryAgeBound(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{HistoryTTL: 300 * time.Millisecond})
	id := a.mustPublish(t, "a", "0")
	a.mustPublish(t, "a", "1")
	ttl, err := rawClient(t, sharedRedis).PTTL(t.Context(), a.relay.StreamKey("a")).Result()
	require.NoError(t, err)
	assert.True(t, ttl > 0 && ttl <= 300*time.Millisecond, "an idle channel's stream expires: PTTL %v", ttl)

	c := b.subscribe(t, "channel=a", id)
	c.RequireNext(t, "1")
	c.Close()
	// Once the TTL has passed, the same point is refused, whether the entries
	// are still in the stream or the key has expired.
	require.Eventually(t, func() bool {
		c := b.subscribe(t, "channel=a", id)
		defer c.Close()
		return c.Next(t).Event == "reset"
	}, wait, 20*time.Millisecond)
}

// Entries older than the TTL are trimmed on publish, except the newest of
// them, so a client that saw it resumes with nothing missed.
func TestHistoryAgeTrimKeepsTheLastSeen(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{HistoryTTL: 600 * time.Millisecond})
	rdb := rawClient(t, sharedRedis)
	first := a.mustPublish(t, "a", "0")
	seen := a.mustPublish(t, "a", "1")
	t0 := time.Now()
	// Events age by the clock: these waits are the ages under test.
	<-time.After(time.Until(t0.Add(300 * time.Millisecond)))
	a.mustPublish(t, "a", "2") // keeps the key alive
	<-time.After(time.Until(t0.Add(700 * time.Millisecond)))
	a.mustPublish(t, "a", "3") // "0" and "1" have aged out: "1" stays as the marker
	n, err := rdb.XLen(t.Context(), a.relay.StreamKey("a")).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 3, n, "the stream dropped what aged out but the newest aged-out entry")

	c := b.subscribe(t, "channel=a", seen)
	assert.Equal(t, []string{"2", "3"}, ssetest.Data(c.NextN(t, 2)), "nothing was missed after the marker")
	c2 := b.subscribe(t, "channel=a", first)
	requireReset(t, c2, "id older than the retained history")
}

func TestHistoryDisabled(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{History: -1})
	c := b.subscribe(t, "channel=a", "")
	b.requireChannels(t, 1)
	id := a.mustPublish(t, "a", "0")
	_, isPos := actors.ParsePos(id)
	assert.True(t, isPos, "ids are still assigned, shaped like stream ids: %q", id)
	assert.Equal(t, id, c.Next(t).ID)
	rdb := rawClient(t, sharedRedis)
	n, err := rdb.XLen(t.Context(), a.relay.StreamKey("a")).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "no entry is kept")
	ttl, err := rdb.PTTL(t.Context(), a.relay.StreamKey("a")).Result()
	require.NoError(t, err)
	assert.Positive(t, ttl, "the id stream expires")
	id2 := a.mustPublish(t, "a", "1")
	p1, _ := actors.ParsePos(id)
	p2, _ := actors.ParsePos(id2)
	assert.True(t, p1.Less(p2), "ids grow")

	r, err := b.relay.Replay(context.Background(), actors.ReplayRequest{Channel: "a", LastEventID: id})
	require.NoError(t, err)
	assert.Equal(t, actors.ReplayUnknown, r.Status)
	c2 := b.subscribe(t, "channel=a", id)
	requireReset(t, c2, "unknown id")
}
