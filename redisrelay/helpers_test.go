package redisrelay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopSharedCluster()
	if code == 0 {
		// go-redis's dial retrier of a killed cluster node sleeps 1 s
		// between attempts and sees its pool closed only then.
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial")); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sharedRedis is the redis-server every machine running the suite has;
// tests that kill or restart Redis start their own.
const sharedRedis = "redis://127.0.0.1:6379/0"

const wait = 5 * time.Second

// newPrefix returns a prefix no other test uses, and deletes its keys at
// cleanup, so tests on one Redis do not see each other.
func newPrefix(t testing.TB, url string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "squalltest-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		rdb := rawClient(t, url)
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// rawClient is a plain go-redis client, closed at cleanup.
func rawClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// node is one hub in cluster mode behind a real HTTP server, with its relay.
type node struct {
	relay *redisrelay.Relay
	hub   *actors.Hub
	srv   *httptest.Server
}

func newNode(t testing.TB, rc redisrelay.Config, hc actors.Config) *node {
	t.Helper()
	relay, err := redisrelay.New(rc)
	require.NoError(t, err, "redisrelay.New")
	hc.Cluster = relay
	hc.History, hc.HistoryTTL = rc.History, rc.HistoryTTL
	hub := actorstest.NewHub(t, hc)
	relay.Start(hub.System(), hub)
	// Cleanups run last first: the server, then the relay, then the hub
	// (whose cleanup counts the actors left in its system).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		require.NoError(t, relay.Shutdown(ctx), "Relay.Shutdown")
	})
	srv := httptest.NewServer(httpedge.New(httpedge.Config{Hub: hub, Ready: relay.Ready}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = hub.Drain(ctx, 0)
		srv.Close()
	})
	return &node{relay: relay, hub: hub, srv: srv}
}

func (n *node) requireReady(t testing.TB) {
	t.Helper()
	require.Eventually(t, func() bool { return n.relay.Ready() == nil }, wait, 5*time.Millisecond,
		"relay not subscribed: %v", n.relay.Ready())
}

// requireChannels waits until the hub has k channel actors. A channel actor
// exists once a join reached the router, and the router forwards every
// later event after that join, so once this returns a subscriber misses
// nothing published afterwards.
func (n *node) requireChannels(t testing.TB, k int) {
	t.Helper()
	require.Eventually(t, func() bool { return n.hub.Channels() == k }, wait, time.Millisecond,
		"want %d channel actors, have %d", k, n.hub.Channels())
}

// publish posts an event and returns the status and the JSON answer.
func (n *node) publish(t testing.TB, channel string, data any, extra ...any) (int, map[string]string) {
	t.Helper()
	body := map[string]any{"channel": channel, "data": data}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(n.srv.URL+"/publish", "application/json", strings.NewReader(string(b)))
	require.NoError(t, err, "POST /publish")
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]string
	require.NoError(t, json.Unmarshal(raw, &out), "answer of POST /publish is JSON: %s", raw)
	return resp.StatusCode, out
}

func (n *node) mustPublish(t testing.TB, channel string, data any, extra ...any) string {
	t.Helper()
	code, out := n.publish(t, channel, data, extra...)
	require.Equal(t, http.StatusAccepted, code, "publish: %v", out)
	require.NotEmpty(t, out["id"])
	return out["id"]
}

func (n *node) status(t testing.TB, path string) int {
	t.Helper()
	resp, err := http.Get(n.srv.URL + path)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// client is one SSE subscriber over a real socket, with the raw frames
// kept for byte-exact checks.
type client = ssetest.Client

func (n *node) subscribe(t testing.TB, query string, lastID string) *client {
	t.Helper()
	var header http.Header
	if lastID != "" {
		header = http.Header{"Last-Event-Id": {lastID}}
	}
	return ssetest.Subscribe(t, n.srv.URL+"/events?"+query, ssetest.Options{Header: header, Buffer: 100000, Frames: true})
}

func seqs(t testing.TB, evs []sse.Event) []int {
	t.Helper()
	out := make([]int, len(evs))
	for i, ev := range evs {
		n, err := strconv.Atoi(string(ev.Data))
		require.NoError(t, err, "event data %q is a sequence number", ev.Data)
		out[i] = n
	}
	return out
}

func upTo(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// redisServer is a private redis-server on a free port, for tests that
// kill, stop or restart it.
type redisServer struct {
	t    testing.TB
	port int
	args []string
	cmd  *exec.Cmd
}

func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	s := &redisServer{t: t, port: port, args: append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no"}, extra...)}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) url() string { return "redis://127.0.0.1:" + strconv.Itoa(s.port) + "/0" }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", s.args...)
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, io.Discard
	require.NoError(s.t, s.cmd.Start(), "start redis-server")
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(s.port), DialerRetries: 1, MaxRetries: -1})
	defer rdb.Close()
	require.Eventually(s.t, func() bool { return rdb.Ping(context.Background()).Err() == nil },
		wait, 10*time.Millisecond, "redis-server on port %d does not answer", s.port)
}

func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // in case it was stopped
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *redisServer) signal(sig os.Signal) {
	s.t.Helper()
	require.NoError(s.t, s.cmd.Process.Signal(sig))
}

func evData(s string) sse.Event { return sse.Event{Data: []byte(s)} }
