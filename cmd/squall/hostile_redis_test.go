package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// privateRedis starts a redis-server of this test alone on a free port, for
// tests that reconfigure or stop it, and returns its URL and process.
func privateRedis(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	addr := freeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := "redis://" + addr + "/0"
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialerRetries: 1, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	require.Eventually(t, func() bool { return rdb.Ping(context.Background()).Err() == nil },
		5*time.Second, 10*time.Millisecond, "redis-server on %s", addr)
	return url, cmd
}

type publishAnswer struct {
	code      int
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
	Error     string `json:"error"`
}

func publishWithKey(t *testing.T, base, data, key string) publishAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/publish", strings.NewReader(`{"channel":"a","data":"`+data+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "POST /publish")
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var a publishAnswer
	require.NoError(t, json.Unmarshal(raw, &a), "answer %s", raw)
	a.code = resp.StatusCode
	return a
}

// TestHostileRedisProcess drives the real binary against a redis-server the
// test reconfigures and stops: with Redis refusing writes (OOM) /readyz
// turns 503 within 2 s without any publish and a publish is 503; with Redis
// hung (SIGSTOP) a publish is 504, and its retry with the same
// Idempotency-Key, once Redis is back, answers the first id as a duplicate.
func TestHostileRedisProcess(t *testing.T) {
	bin := squallBinary(t)
	url, rs := privateRedis(t)
	h := startHub(t, bin, "p", "--redis", url)
	base := "http://" + h.addr
	readyz := func() int {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	admin := redis.NewClient(opt)
	t.Cleanup(func() { _ = admin.Close() })
	ctx := context.Background()

	require.NoError(t, admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	require.NoError(t, admin.ConfigSet(ctx, "maxmemory", "1").Err())
	start := time.Now()
	require.Eventually(t, func() bool { return readyz() == http.StatusServiceUnavailable }, 5*time.Second, 10*time.Millisecond)
	t.Logf("/readyz 503 %v after OOM", time.Since(start).Round(time.Millisecond))
	assert.Less(t, time.Since(start), 2*time.Second)
	a := publishWithKey(t, base, "refused", "k1")
	assert.Equal(t, http.StatusServiceUnavailable, a.code, "a refused publish: %+v", a)
	require.NoError(t, admin.ConfigSet(ctx, "maxmemory", "0").Err())
	start = time.Now()
	require.Eventually(t, func() bool { return readyz() == http.StatusOK }, 5*time.Second, 10*time.Millisecond)
	t.Logf("/readyz 200 %v after Redis recovered", time.Since(start).Round(time.Millisecond))

	first := publishWithKey(t, base, "once", "k2")
	require.Equal(t, http.StatusAccepted, first.code)
	again := publishWithKey(t, base, "once", "k2")
	assert.Equal(t, publishAnswer{code: http.StatusAccepted, ID: first.ID, Duplicate: true}, again)

	require.NoError(t, rs.Process.Signal(syscall.SIGSTOP))
	hung := publishWithKey(t, base, "maybe", "k3")
	assert.Equal(t, http.StatusGatewayTimeout, hung.code, "a publish to a hung Redis: %+v", hung)
	require.NoError(t, rs.Process.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool { return readyz() == http.StatusOK }, 10*time.Second, 10*time.Millisecond)
	retry := publishWithKey(t, base, "maybe", "k3")
	assert.Equal(t, http.StatusAccepted, retry.code)
	assert.True(t, retry.Duplicate, "the hung Redis ran the first attempt: the retry is a duplicate")
	n, err := admin.XLen(ctx, "p:history:a").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "once and maybe, each once; refused never")
}
