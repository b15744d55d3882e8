package redisrelay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/internal/redistest"
	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/redisrelay"
)

// shared is the one 3-master cluster of this test binary, for the tests
// that do not kill nodes; TestMain stops it.
var shared struct {
	once sync.Once
	c    *redistest.Cluster
	err  error
}

func sharedCluster(t testing.TB) *redistest.Cluster {
	t.Helper()
	if !redistest.Available() {
		t.Skip("redis-server or redis-cli not installed")
	}
	shared.once.Do(func() { shared.c, shared.err = redistest.StartCluster(3, 0) })
	require.NoError(t, shared.err, "start the shared Redis Cluster")
	return shared.c
}

func stopSharedCluster() {
	if shared.c != nil {
		shared.c.Stop()
	}
}

func clusterPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "squalltest-" + hex.EncodeToString(b[:])
}

// channelsOnEveryMaster returns, for each master of the cluster, a channel
// whose partition it serves.
func channelsOnEveryMaster(t testing.TB, c *redistest.Cluster, r *redisrelay.Relay) []string {
	t.Helper()
	byMaster := map[int]string{}
	for i := 0; len(byMaster) < c.Masters && i < 1000; i++ {
		ch := "ch" + strconv.Itoa(i)
		m, err := c.MasterOf(t.Context(), r.StreamKey(ch))
		require.NoError(t, err)
		if _, ok := byMaster[m.Port]; !ok {
			byMaster[m.Port] = ch
		}
	}
	require.Len(t, byMaster, c.Masters, "a channel on every master")
	out := make([]string, 0, len(byMaster))
	for _, ch := range byMaster {
		out = append(out, ch)
	}
	return out
}

func (n *node) requireListening(t testing.TB, channels ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, ch := range channels {
			if !n.relay.Listening(ch) {
				return false
			}
		}
		return true
	}, wait, 5*time.Millisecond, "subscriptions to %v not confirmed", channels)
}

// Two hubs on a 3-master cluster, in both pub/sub modes: publishes to a
// channel on every master, through either hub, reach the streams of both in
// one order with one set of ids, and a stream resumes on the other hub.
func TestClusterPublishesOnEverySlotOwner(t *testing.T) {
	c := sharedCluster(t)
	for _, sharded := range []bool{true, false} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			rc := redisrelay.Config{URL: c.URL(), Prefix: clusterPrefix(), ShardedPubSub: sharded}
			a := newNode(t, rc, actors.Config{})
			b := newNode(t, rc, actors.Config{})
			a.requireReady(t)
			b.requireReady(t)
			chans := channelsOnEveryMaster(t, c, a.relay)
			for _, ch := range chans {
				ca := a.subscribe(t, "channel="+ch, "")
				cb := b.subscribe(t, "channel="+ch, "")
				a.requireListening(t, ch)
				b.requireListening(t, ch)
				var ids []string
				for k := range 10 {
					n := a
					if k%2 == 1 {
						n = b
					}
					ids = append(ids, n.mustPublish(t, ch, strconv.Itoa(k)))
				}
				gotA, gotB := ca.NextN(t, 10), cb.NextN(t, 10)
				assert.Equal(t, upTo(0, 10), seqs(t, gotA), "channel %s on hub a", ch)
				assert.Equal(t, ids, ssetest.IDs(gotA))
				assert.Equal(t, ids, ssetest.IDs(gotB), "one set of ids on both hubs")

				// Resume on the other hub after the fourth event.
				r := b.subscribe(t, "channel="+ch, ids[3])
				assert.Equal(t, upTo(4, 10), seqs(t, r.NextN(t, 6)), "resume across hubs")
			}
		})
	}
}

// A hub with a stream on channel A only receives nothing of channel B: its
// ingress (what its subscriptions read) counts A's events alone.
func TestClusterHubReceivesOnlyItsChannels(t *testing.T) {
	c := sharedCluster(t)
	a := newNode(t, redisrelay.Config{URL: c.URL(), Prefix: clusterPrefix(), ShardedPubSub: true}, actors.Config{})
	a.requireReady(t)
	sa := a.subscribe(t, "channel=A", "")
	a.requireListening(t, "A")
	before, beforeBytes := a.relay.Ingress()
	for k := range 50 {
		a.mustPublish(t, "B", strings.Repeat("b", 100)+strconv.Itoa(k))
	}
	for k := range 5 {
		a.mustPublish(t, "A", strconv.Itoa(k))
	}
	assert.Equal(t, upTo(0, 5), seqs(t, sa.NextN(t, 5)))
	msgs, bytes := a.relay.Ingress()
	assert.Equal(t, uint64(5), msgs-before, "only channel A's events reach the hub")
	assert.Less(t, bytes-beforeBytes, uint64(5*200), "no byte of channel B")

}

// Joins without waiting for the subscription: events published between a
// stream's join and Redis's confirmation come from the history, so the
// stream misses none.
func TestJoinWindowLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		rc   func(t *testing.T) redisrelay.Config
	}{
		{"single", func(t *testing.T) redisrelay.Config {
			return redisrelay.Config{URL: sharedRedis, Prefix: newPrefix(t, sharedRedis)}
		}},
		{"cluster", func(t *testing.T) redisrelay.Config {
			return redisrelay.Config{URL: sharedCluster(t).URL(), Prefix: clusterPrefix(), ShardedPubSub: true}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := tc.rc(t)
			a := newNode(t, rc, actors.Config{})
			pub := newNode(t, rc, actors.Config{})
			a.requireReady(t)
			pub.requireReady(t)
			for round := range 5 {
				ch := "w" + strconv.Itoa(round)
				s := a.subscribe(t, "channel="+ch, "")
				a.requireChannels(t, round+1) // joined; not waiting for Listening
				for k := range 20 {
					pub.mustPublish(t, ch, strconv.Itoa(k))
				}
				assert.Equal(t, upTo(0, 20), seqs(t, s.NextN(t, 20)), "round %d", round)
			}
		})
	}
}

// 10,000 channels joined at once cost a handful of SUBSCRIBE commands, not
// 10,000, and leaving them as few UNSUBSCRIBEs.
func TestSubscribeStorm(t *testing.T) {
	srv := startRedis(t)
	admin := rawClient(t, srv.url())
	relay, err := redisrelay.New(redisrelay.Config{URL: srv.url()})
	require.NoError(t, err)
	relay.Start(nil, nopSink{})
	t.Cleanup(func() { require.NoError(t, relay.Close()) })
	const n = 10000
	names := make([]string, n)
	for i := range names {
		names[i] = "storm" + strconv.Itoa(i)
		relay.Join(names[i])
	}
	require.Eventually(t, func() bool {
		num, err := admin.PubSubNumSub(t.Context(), relay.PubSubChannel(names[n-1])).Result()
		return err == nil && num[relay.PubSubChannel(names[n-1])] == 1 && relay.Listening(names[n-1]) && relay.Listening(names[0])
	}, 3*wait, 10*time.Millisecond)
	subs := commandCalls(t, admin, "subscribe")
	assert.LessOrEqual(t, subs, int64(n/1000+20), "SUBSCRIBE commands for %d channels", n)
	t.Logf("%d channels joined with %d SUBSCRIBE commands", n, subs)
	for _, ch := range names {
		relay.Leave(ch)
	}
	require.Eventually(t, func() bool {
		num, err := admin.PubSubNumSub(t.Context(), relay.PubSubChannel(names[0]), relay.PubSubChannel(names[n-1])).Result()
		return err == nil && num[relay.PubSubChannel(names[0])] == 0 && num[relay.PubSubChannel(names[n-1])] == 0
	}, 3*wait, 10*time.Millisecond)
	unsubs := commandCalls(t, admin, "unsubscribe")
	assert.LessOrEqual(t, unsubs, int64(n/1000+20), "UNSUBSCRIBE commands for %d channels", n)
	t.Logf("%d channels left with %d UNSUBSCRIBE commands", n, unsubs)
}

// commandCalls reads how many times Redis ran a command (INFO commandstats).
func commandCalls(t testing.TB, rdb *redis.Client, cmd string) int64 {
	t.Helper()
	info, err := rdb.Info(t.Context(), "commandstats").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			v, _, _ := strings.Cut(rest, ",")
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	return 0
}

// On a cluster, the storm is batched per partition: at most one SSUBSCRIBE
// per partition per batch.
func TestClusterSubscribeStorm(t *testing.T) {
	c := sharedCluster(t)
	relay, err := redisrelay.New(redisrelay.Config{URL: c.URL(), Prefix: clusterPrefix(), ShardedPubSub: true})
	require.NoError(t, err)
	relay.Start(nil, nopSink{})
	t.Cleanup(func() { require.NoError(t, relay.Close()) })
	cc := c.Client()
	defer cc.Close()
	calls := func() int64 {
		var total int64
		var mu sync.Mutex
		require.NoError(t, cc.ForEachMaster(t.Context(), func(ctx context.Context, m *redis.Client) error {
			n := commandCalls(t, m, "ssubscribe")
			mu.Lock()
			total += n
			mu.Unlock()
			return nil
		}))
		return total
	}
	before := calls()
	const n = 10000
	for i := range n {
		relay.Join("cstorm" + strconv.Itoa(i))
	}
	require.Eventually(t, func() bool {
		for i := 0; i < n; i += 97 {
			if !relay.Listening("cstorm" + strconv.Itoa(i)) {
				return false
			}
		}
		return relay.Listening("cstorm" + strconv.Itoa(n-1))
	}, 3*wait, 10*time.Millisecond)
	got := calls() - before
	t.Logf("%d channels joined with %d SSUBSCRIBE commands", n, got)
	assert.LessOrEqual(t, got, int64(16*5), "SSUBSCRIBE commands: batched per partition")
}

// The Python SDK on a cluster, in the compatibility mode: its plain
// PUBLISH PREFIX:C reaches Squall's streams, and Squall's publishes reach
// its PSUBSCRIBE PREFIX:*.
func TestClusterPythonSDKCompat(t *testing.T) {
	c := sharedCluster(t)
	prefix := clusterPrefix()
	a := newNode(t, redisrelay.Config{URL: c.URL(), Prefix: prefix}, actors.Config{})
	a.requireReady(t)
	cc := c.Client()
	defer cc.Close()

	sdk := cc.PSubscribe(t.Context(), prefix+":*")
	defer sdk.Close()
	_, err := sdk.Receive(t.Context())
	require.NoError(t, err, "PSUBSCRIBE confirmed")

	s := a.subscribe(t, "channel=orders", "")
	a.requireListening(t, "orders")
	// The count of receivers is the node's only: the cluster bus carries
	// the message to the others.
	require.NoError(t, cc.Publish(t.Context(), prefix+":orders", `{"data":"from-sdk","event":null,"id":"sdk-1","retry":null}`).Err())
	ev := s.Next(t)
	assert.Equal(t, "from-sdk", string(ev.Data))
	assert.Equal(t, "sdk-1", ev.ID)

	a.mustPublish(t, "orders", "from-squall")
	// Both reach the SDK, in either order: a PUBLISH reaches the nodes
	// other than the one it was sent to over the cluster bus, and the two
	// were sent to different nodes.
	var payloads []string
	for range 2 {
		msg, err := sdk.ReceiveMessage(t.Context())
		require.NoError(t, err)
		assert.Equal(t, prefix+":orders", msg.Channel)
		payloads = append(payloads, msg.Payload)
	}
	for _, want := range []string{`"data":"from-sdk"`, `"data":"from-squall"`} {
		assert.True(t, strings.Contains(payloads[0], want) || strings.Contains(payloads[1], want), "%s in %q", want, payloads)
	}
	assert.Equal(t, "from-squall", string(s.Next(t).Data))
}

// A master with a replica is killed while a publisher keeps publishing to
// its channel: publishes are refused (503) only until the replica takes
// over, /readyz says so meanwhile, the hubs recover without a restart, and
// every accepted event reaches the stream on the other hub.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a cluster master")
	}
	if !redistest.Available() {
		t.Skip("redis-server or redis-cli not installed")
	}
	c, err := redistest.StartCluster(3, 1)
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	rc := redisrelay.Config{URL: c.URL(), Prefix: clusterPrefix(), ShardedPubSub: true}
	a := newNode(t, rc, actors.Config{})
	b := newNode(t, rc, actors.Config{})
	a.requireReady(t)
	b.requireReady(t)
	const ch = "fo"
	s := b.subscribe(t, "channel="+ch, "")
	b.requireListening(t, ch)
	victim, err := c.MasterOf(t.Context(), a.relay.StreamKey(ch))
	require.NoError(t, err)

	var (
		accepted   []int
		firstRefus time.Time
		lastRefus  time.Time
		refused    int
		notReady   bool
	)
	start := time.Now()
	killed := time.Time{}
	for k := 0; ; k++ {
		if k == 20 {
			c.Kill(victim)
			killed = time.Now()
		}
		code, _ := a.publish(t, ch, strconv.Itoa(k))
		switch code {
		case http.StatusAccepted:
			accepted = append(accepted, k)
		case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			now := time.Now()
			if firstRefus.IsZero() {
				firstRefus = now
			}
			lastRefus = now
			refused++
			if a.status(t, "/readyz") != http.StatusOK {
				notReady = true
			}
		default:
			t.Fatalf("publish answered %d", code)
		}
		if !killed.IsZero() && len(accepted) >= 40 && time.Since(lastRefus) > time.Second {
			break
		}
		require.Less(t, time.Since(start), 60*time.Second, "publishes did not recover")
		time.Sleep(20 * time.Millisecond) // the publisher's pace, not a synchronization
	}
	require.False(t, firstRefus.IsZero(), "some publishes were refused while the slot had no master")
	assert.True(t, notReady, "/readyz said not ready while publishes were refused")
	t.Logf("failover timeline: master killed at +%v; publishes refused from +%v to +%v (%d refused); %d accepted",
		killed.Sub(start).Round(time.Millisecond), firstRefus.Sub(start).Round(time.Millisecond),
		lastRefus.Sub(start).Round(time.Millisecond), refused, len(accepted))
	got := seqs(t, s.NextN(t, len(accepted)))
	assert.Equal(t, accepted, got, "every accepted event reached the stream, in order, once")
	a.requireReady(t)
	b.requireReady(t)
}

// Through Sentinel: the relay finds the master the Sentinel names and works
// as with one Redis.
func TestSentinelBackend(t *testing.T) {
	master := startRedis(t)
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil,
		"port %d\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n",
		port, master.port), 0o600))
	cmd := exec.Command("redis-server", conf, "--sentinel")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	rc := redisrelay.Config{URL: "redis://127.0.0.1:" + strconv.Itoa(port), SentinelMaster: "mymaster", Prefix: clusterPrefix()}
	a := newNode(t, rc, actors.Config{})
	b := newNode(t, rc, actors.Config{})
	a.requireReady(t)
	b.requireReady(t)
	s := b.subscribe(t, "channel=s", "")
	b.requireListening(t, "s")
	id := a.mustPublish(t, "s", "0")
	a.mustPublish(t, "s", "1")
	assert.Equal(t, []int{0, 1}, seqs(t, s.NextN(t, 2)))
	r := a.subscribe(t, "channel=s", id)
	assert.Equal(t, []int{1}, seqs(t, r.NextN(t, 1)), "resume through the Sentinel-named master")
	n, err := rawClient(t, master.url()).XLen(t.Context(), a.relay.StreamKey("s")).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "the history is on the master the Sentinel names")
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
