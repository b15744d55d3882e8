package redisrelay_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/redisrelay"
)

// logRecorder keeps the messages logged through it.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// TestHostileReadiness: when Redis refuses writes (OOM, READONLY, MISCONF,
// NOAUTH), /readyz turns 503 within 2 s without any publish, publishes are
// 503 (certainly not taken) with the reason logged once, not per publish,
// and both recover when Redis does.
func TestHostileReadiness(t *testing.T) {
	srv := startRedis(t, "--enable-protected-configs", "yes")
	admin := rawClient(t, srv.url())
	ctx := context.Background()
	logs := &logRecorder{}
	n := newNode(t, redisrelay.Config{URL: srv.url(), Prefix: "r", Logger: slog.New(logs),
		PingInterval: 100 * time.Millisecond, LogInterval: 5 * time.Second}, actors.Config{})
	n.requireReady(t)

	cfg := func(kv ...string) {
		t.Helper()
		for i := 0; i+1 < len(kv); i += 2 {
			require.NoError(t, admin.ConfigSet(ctx, kv[i], kv[i+1]).Err(), "CONFIG SET %s %s", kv[i], kv[i+1])
		}
	}
	killClients := func() {
		t.Helper()
		// The hub reconnects, and its new connections meet the password.
		require.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal").Err())
		require.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err())
	}
	bgsave := func(want string) {
		t.Helper()
		require.NoError(t, admin.BgSave(ctx).Err())
		require.Eventually(t, func() bool {
			info := admin.Info(ctx, "persistence").Val()
			return strings.Contains(info, "rdb_bgsave_in_progress:0") &&
				strings.Contains(info, "rdb_last_bgsave_status:"+want)
		}, wait, 10*time.Millisecond, "BGSAVE ends %s", want)
	}
	cases := []struct {
		name            string
		refuse, recover func()
	}{
		{name: "OOM",
			refuse:  func() { cfg("maxmemory-policy", "noeviction", "maxmemory", "1") },
			recover: func() { cfg("maxmemory", "0") }},
		{name: "READONLY",
			refuse:  func() { require.NoError(t, admin.Do(ctx, "REPLICAOF", "127.0.0.1", "1").Err()) },
			recover: func() { require.NoError(t, admin.Do(ctx, "REPLICAOF", "NO", "ONE").Err()) }},
		{name: "MISCONF",
			refuse: func() {
				dir := t.TempDir() + "/gone"
				require.NoError(t, os.Mkdir(dir, 0o755))
				cfg("save", "3600 1", "dir", dir)
				require.NoError(t, os.Remove(dir)) // the save cannot write its file
				bgsave("err")
			},
			recover: func() {
				cfg("dir", t.TempDir())
				bgsave("ok")
			}},
		{name: "NOAUTH",
			refuse: func() {
				cfg("requirepass", "s3cret")
				killClients()
			},
			recover: func() { cfg("requirepass", "") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, http.StatusOK, n.status(t, "/readyz"))
			refusedLogs, failedLogs := logs.count("redisrelay: writes to Redis fail"), logs.count("redisrelay: publishes failed")
			tc.refuse()
			start := time.Now()
			require.Eventually(t, func() bool { return n.status(t, "/readyz") == http.StatusServiceUnavailable },
				wait, 10*time.Millisecond, "/readyz turns 503")
			down := time.Since(start)
			assert.Less(t, down, 2*time.Second, "/readyz turns 503 within 2 s without a publish")
			// Connections the test killed may first answer EOF (504, rightly):
			// the burst starts once the write probe has met Redis's refusal.
			require.Eventually(t, func() bool {
				err := n.relay.Ready()
				return errors.Is(err, redisrelay.ErrPublishFailing) && strings.Contains(err.Error(), tc.name)
			}, wait, 10*time.Millisecond, "Ready gives the refusal: %v", n.relay.Ready())
			for range 20 {
				code, out := n.publish(t, "a", "refused")
				require.Equal(t, http.StatusServiceUnavailable, code, "a refused publish is 503: %v", out)
			}
			assert.Equal(t, 1, logs.count("redisrelay: writes to Redis fail")-refusedLogs, "the refusal is logged once: %q", logs.msgs)
			assert.LessOrEqual(t, logs.count("redisrelay: publishes failed")-failedLogs, 1, "20 refused publishes log at most once")

			tc.recover()
			start = time.Now()
			require.Eventually(t, func() bool { return n.status(t, "/readyz") == http.StatusOK },
				wait, 10*time.Millisecond, "/readyz turns 200 again: %v", n.relay.Ready())
			up := time.Since(start)
			n.mustPublish(t, "a", "taken")
			t.Logf("%s: /readyz 503 after %v, 200 again %v after Redis recovered", tc.name, down.Round(time.Millisecond), up.Round(time.Millisecond))
		})
	}
	entries, err := admin.XRange(ctx, n.relay.StreamKey("a"), "-", "+").Result()
	require.NoError(t, err)
	assert.Len(t, entries, len(cases), "only the taken publishes are in the history")
}
