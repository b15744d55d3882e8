package httpedge_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/redisrelay"
)

// hostileRedis is the redis-server every machine running the suite has.
// Tests on it use a prefix of their own, so they do not see each other.
const hostileRedis = "redis://127.0.0.1:6379/0"

// hostileRedisClient is a plain client, closed at cleanup.
func hostileRedisClient(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(hostileRedis)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// hostilePrefix returns a Redis prefix no other test uses and deletes its
// keys at cleanup.
func hostilePrefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "squalltest-" + t.Name() + "-" + hex.EncodeToString(b[:])
	rdb := hostileRedisClient(t)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// clusterNode is a hub in cluster mode, with its relay on the shared
// Redis, behind a real HTTP server; its edge's metrics export the relay's
// counts as cmd/squall wires them.
type clusterNode struct {
	*hubServer
	relay   *redisrelay.Relay
	metrics *httpedge.Metrics
}

func newClusterNode(t testing.TB, prefix string, cfg actors.Config, edge httpedge.Config) *clusterNode {
	t.Helper()
	// PingInterval is also the read deadline of one pub/sub message: under
	// the race detector on a loaded machine, go-redis can take over a second
	// to read the 3 MiB poison message, and a deadline hit mid-message costs
	// a resubscribe (see RELIABILITY.md, Known gaps). These tests are not
	// about outages.
	relay, err := redisrelay.New(redisrelay.Config{URL: hostileRedis, Prefix: prefix, History: cfg.History, HistoryTTL: cfg.HistoryTTL,
		PingInterval: 5 * time.Second})
	require.NoError(t, err, "redisrelay.New")
	cfg.Cluster = relay
	h := actorstest.NewHub(t, cfg)
	relay.Start(h.System(), h)
	// Cleanups run last first: the server, the relay, then the hub.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		require.NoError(t, relay.Shutdown(ctx), "Relay.Shutdown")
	})
	if edge.Metrics == nil {
		edge.Metrics = httpedge.NewMetrics()
	}
	edge.Metrics.SetRelayReady(relay.Ready)
	edge.Metrics.SetRelayDrops(relay.Malformed, relay.Oversize)
	edge.Hub, edge.Ready = h, relay.Ready
	e := httpedge.New(edge)
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = h.Drain(ctx, 0)
		srv.Close()
	})
	require.Eventually(t, func() bool { return relay.Ready() == nil }, wait, 5*time.Millisecond,
		"relay not subscribed: %v", relay.Ready())
	return &clusterNode{hubServer: &hubServer{hub: h, edge: e, srv: srv}, relay: relay, metrics: edge.Metrics}
}
