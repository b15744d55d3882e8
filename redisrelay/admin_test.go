package redisrelay_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/internal/redistest"
	"github.com/squall-sse/squall/redisrelay"
)

// startAdmin runs an Admin beside n, closed before n's relay.
func startAdmin(t *testing.T, n *node, interval time.Duration) *redisrelay.Admin {
	t.Helper()
	a, err := redisrelay.NewAdmin(n.relay, n.hub, redisrelay.AdminConfig{Interval: interval})
	require.NoError(t, err)
	a.Start()
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	require.Eventually(t, a.Subscribed, wait, 5*time.Millisecond, "admin subscription")
	return a
}

// presenceOf is a cluster page as channel -> subscribers.
func presenceOf(t *testing.T, a *redisrelay.Admin, q actors.PresenceQuery) (map[string]int, actors.ClusterPresencePage) {
	t.Helper()
	page, err := a.Presence(t.Context(), q)
	require.NoError(t, err)
	out := map[string]int{}
	for _, c := range page.Channels {
		out[c.Channel] = c.Subscribers
	}
	return out, page
}

// Two hubs on a 3-master cluster with sharded pub/sub: presence is summed
// over both for channels on every master (the interval's keys share a
// slot, the channels do not), and a disconnect by channel taken by A
// closes B's stream, acknowledged by B.
func TestAdminOnRedisCluster(t *testing.T) {
	c := sharedCluster(t)
	rc := redisrelay.Config{URL: c.URL(), Prefix: clusterPrefix(), ShardedPubSub: true}
	a := newNode(t, rc, actors.Config{})
	b := newNode(t, rc, actors.Config{})
	a.requireReady(t)
	b.requireReady(t)
	aa := startAdmin(t, a, 200*time.Millisecond)
	startAdmin(t, b, 200*time.Millisecond)
	chans := channelsOnEveryMaster(t, c, a.relay)
	want := map[string]int{}
	var onB []*client
	for i, ch := range chans {
		a.subscribe(t, "channel="+ch, "")
		onB = append(onB, b.subscribe(t, "channel="+ch, ""))
		want[ch] = 2
		if i == 0 {
			b.subscribe(t, "channel="+ch, "")
			want[ch] = 3
		}
	}
	var got map[string]int
	var page actors.ClusterPresencePage
	require.Eventually(t, func() bool {
		got, page = presenceOf(t, aa, actors.PresenceQuery{Limit: 10})
		return assert.ObjectsAreEqual(want, got) && page.Nodes == 2
	}, wait, 20*time.Millisecond, "counts summed over both hubs: %v (%d nodes)", got, page.Nodes)
	one, err := aa.Subscribers(t.Context(), chans[0])
	require.NoError(t, err)
	assert.Equal(t, 3, one.Subscribers)

	res, err := aa.Disconnect(t.Context(), actors.DisconnectMatch{Channel: chans[1]},
		actors.DisconnectNotice{Reason: "moving", Retry: time.Second})
	require.NoError(t, err)
	assert.Equal(t, actors.ClusterDisconnect{Here: 1, Disconnected: 2, Acknowledged: 2, Expected: 2}, res)
	assert.Equal(t, "event: squall-closed\nretry: 1000\ndata: {\"reason\":\"moving\",\"retry_ms\":1000}\n\n", onB[1].NextFrame(t))
	onB[1].RequireEnded(t)
}

// A node without streams writes only its node marker; acknowledgements on
// a node's inbox are checked like requests: malformed ones are counted,
// and a well-formed one for no pending request is ignored.
func TestAdminIdleNodeAndMalformedAcks(t *testing.T) {
	a, _ := twoNodes(t, redisrelay.Config{})
	_, err := redisrelay.NewAdmin(a.relay, a.hub, redisrelay.AdminConfig{Interval: 9 * time.Millisecond})
	assert.ErrorContains(t, err, "under 10ms")

	adm := startAdmin(t, a, 50*time.Millisecond)
	rdb := redistest.Client(t, sharedRedis)
	ctx := context.Background()
	head := a.relay.Prefix() + "!presence{"
	var keys []string
	require.Eventually(t, func() bool {
		keys, err = rdb.Keys(ctx, head+"*").Result()
		return err == nil && len(keys) >= 2
	}, wait, 10*time.Millisecond)
	for _, k := range keys {
		assert.True(t, strings.HasSuffix(k, "}:nodes") || strings.HasSuffix(k, "}:written"), "an idle node writes %s", k)
		ttl, err := rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		assert.True(t, ttl > 0 && ttl <= 150*time.Millisecond, "%s expires within 3 intervals: %v", k, ttl)
	}

	inbox := a.relay.Prefix() + "!admin!" + adm.Node()
	id := strings.Repeat("b", 32)
	bad := []string{
		`{}`,
		`{"id":"` + id + `","node":"` + id + `","disconnected":-1}`,
		`{"id":"` + id + `","node":"` + id + `","disconnected":1,"more":1}`,
		`{"id":"BB","node":"` + id + `","disconnected":1}`,
		`{"id":"` + id + `","node":"` + id + `","disconnected":1}` + strings.Repeat(" ", redisrelay.MaxAdminMessage),
	}
	// Well-formed, for no request: dropped without a count. Published
	// first, so that once the count is reached it has been read too.
	require.NoError(t, rdb.Publish(ctx, inbox, `{"id":"`+id+`","node":"`+id+`","disconnected":1}`).Err())
	for _, m := range bad {
		require.NoError(t, rdb.Publish(ctx, inbox, m).Err())
	}
	require.Eventually(t, func() bool { return adm.Malformed() == uint64(len(bad)) }, wait, 5*time.Millisecond,
		"malformed acks counted: %d", adm.Malformed())
}

// A node that stops reporting while its streams stay open (a crash, or a
// node cut off from Redis) drops out of the counts within 2 intervals of
// its last report, with nothing cleaning up after it.
func TestAdminSilentNodeDropsOut(t *testing.T) {
	const interval = 300 * time.Millisecond
	a, b := twoNodes(t, redisrelay.Config{})
	aa := startAdmin(t, a, interval)
	ab := startAdmin(t, b, interval)
	a.subscribe(t, "channel=room", "")
	b.subscribe(t, "channel=room", "")
	var got actors.ClusterSubscribers
	require.Eventually(t, func() bool {
		var err error
		got, err = aa.Subscribers(t.Context(), "room")
		return err == nil && got.Subscribers == 2 && got.Nodes == 2
	}, wait, 10*time.Millisecond, "both counted: %+v", got)

	require.NoError(t, ab.Close())
	silent := time.Now()
	require.Eventually(t, func() bool {
		var err error
		got, err = aa.Subscribers(t.Context(), "room")
		return err == nil && got.Subscribers == 1 && got.Nodes == 1
	}, wait, 10*time.Millisecond, "B dropped out: %+v", got)
	gone := time.Since(silent)
	assert.Less(t, gone, 2*interval+time.Second, "dropped out within 2 intervals (and a second of slack for a loaded machine)")
	t.Logf("dropped out %v after its last report could have been written (interval %v)", gone.Round(time.Millisecond), interval)
	assert.Equal(t, 1, b.hub.OpenStreams(), "B's stream is still open")
}

// With the relay's pattern subscription (InterestAll, PREFIX:*), the admin
// channels are not in its pattern: requests, acknowledgements and junk on
// them reach the admin only, never the relay.
func TestAdminChannelsOutsideTheRelaysPattern(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{Interest: redisrelay.InterestAll})
	aa := startAdmin(t, a, time.Second)
	ab := startAdmin(t, b, time.Second)
	res, err := aa.Disconnect(t.Context(), actors.DisconnectMatch{Subject: "nobody"}, actors.DisconnectNotice{Reason: "r"})
	require.NoError(t, err)
	assert.Equal(t, 0, res.Disconnected)
	rdb := redistest.Client(t, sharedRedis)
	require.NoError(t, rdb.Publish(t.Context(), a.relay.Prefix()+"!admin", "junk").Err())
	require.Eventually(t, func() bool { return aa.Malformed() == 1 && ab.Malformed() == 1 }, wait, 5*time.Millisecond)
	for _, n := range []*node{a, b} {
		msgs, _ := n.relay.Ingress()
		assert.Zero(t, msgs, "the relay read nothing")
		assert.Zero(t, n.relay.Malformed())
	}
}
