package squall_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/internal/ssetest"
)

const adminSecret = "an-admin-secret-for-the-test"

func adminGet(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return resp.StatusCode, v
}

// An embedder in cluster mode with an admin secret gets the cluster-wide
// admin API: two brokers count each other's streams.
func TestClusterAdminForEmbedders(t *testing.T) {
	prefix := newPrefix(t)
	cfg := squall.Config{RedisURL: sharedRedis, RedisPrefix: prefix, AdminSecret: adminSecret,
		AdminInterval: 100 * time.Millisecond}
	_, srvA := mounted(t, cfg)
	_, srvB := mounted(t, cfg)
	ssetest.Subscribe(t, srvA.URL+"/sse/events?channel=orders", ssetest.Options{})
	ssetest.Subscribe(t, srvB.URL+"/sse/events?channel=orders", ssetest.Options{})
	var v map[string]any
	require.Eventually(t, func() bool {
		_, v = adminGet(t, srvA.URL+"/sse/admin/channels/orders")
		return v["subscribers"] == 2.0 && v["nodes"] == 2.0
	}, wait, 150*time.Millisecond, "both brokers' streams counted: %v", v)
	assert.Equal(t, "cluster", v["scope"])
	assert.Equal(t, 100.0, v["interval_ms"])
}

// With Redis unreachable, a cluster-wide query answers 503 with the reason.
func TestClusterAdminWithoutRedis(t *testing.T) {
	b, err := squall.New(squall.Config{RedisURL: "redis://127.0.0.1:1", AdminSecret: adminSecret})
	require.NoError(t, err)
	srv := httptest.NewServer(b)
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		assert.NoError(t, b.Shutdown(ctx))
	}()
	code, v := adminGet(t, srv.URL+"/admin/channels")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.True(t, strings.HasPrefix(v["error"].(string), "cluster admin failed: "), "%v", v)
}
