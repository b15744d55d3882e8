package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/squall-sse/squall/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{"SQUALL_ADDR": ":9999", "SQUALL_HEARTBEAT": "3s", "SQUALL_MAX_BODY": "77"}
	o, err := parse([]string{"--heartbeat", "5s"}, func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, ":9999", o.addr, "from the environment")
	assert.Equal(t, 5*time.Second, o.heartbeat, "the flag wins over the environment")
	assert.Equal(t, int64(77), o.maxBody)
	assert.Equal(t, 20*time.Millisecond, o.flushGap, "the default gap")
	assert.False(t, o.fixedGap, "by default only a stream that falls behind waits out the gap")

	o, err = parse(nil, func(k string) string {
		return map[string]string{"SQUALL_FLUSH_GAP": "40ms", "SQUALL_FLUSH_GAP_FIXED": "true"}[k]
	})
	require.NoError(t, err)
	assert.Equal(t, 40*time.Millisecond, o.flushGap)
	assert.True(t, o.fixedGap)

	_, err = parse(nil, func(k string) string { return map[string]string{"SQUALL_HEARTBEAT": "soon"}[k] })
	assert.ErrorContains(t, err, "SQUALL_HEARTBEAT")

	o, err = parse([]string{"--redis", "redis://s1:26379,s2:26379", "--redis-sentinel", "mymaster", "--redis-interest", "all"},
		func(k string) string { return map[string]string{"SQUALL_REDIS_SHARDED": "true"}[k] })
	require.NoError(t, err)
	assert.Equal(t, "mymaster", o.sentinel)
	assert.Equal(t, "all", o.interest)
	assert.True(t, o.sharded, "from the environment")
	o, err = parse(nil, func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, "channels", o.interest, "per-channel interest by default")
	assert.False(t, o.sharded, "the compatibility mode by default")
}

func TestBadRedisInterestIsRefused(t *testing.T) {
	err := run(t.Context(), []string{"--addr", freeAddr(t), "--redis", "redis://127.0.0.1:1", "--redis-interest", "some"},
		func(string) string { return "" }, os.Stderr)
	assert.ErrorContains(t, err, "--redis-interest")
	err = run(t.Context(), []string{"--addr", freeAddr(t), "--redis", "redis+cluster://127.0.0.1:1", "--redis-interest", "all", "--redis-sharded"},
		func(string) string { return "" }, os.Stderr)
	assert.ErrorContains(t, err, "InterestAll needs classic pub/sub")
}

// squallBinary builds the hub once per test run.
// startProcess starts cmd and returns the channel its Wait result arrives
// on; the test's cleanup kills it and waits for that result.
func startProcess(t *testing.T, cmd *exec.Cmd) chan error {
	t.Helper()
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return exited
}

func squallBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "squall")
	out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestSIGTERMDrainsAndExitsZero runs the real binary: on SIGTERM every open
// stream gets a retry hint and is closed, and the process exits 0 within
// the drain window.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	bin := squallBinary(t)
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--addr", addr, "--drain", "3s")
	cmd.Env = append(os.Environ(), "SQUALL_LOG_LEVEL=warn")
	exited := startProcess(t, cmd)
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "hub ready")

	type result struct {
		events int
		retry  time.Duration
		err    error
	}
	results := make(chan result, 2)
	opened := make(chan struct{}, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(base + "/events?channel=a")
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			opened <- struct{}{}
			p := sse.NewParser(bufio.NewReader(resp.Body))
			n := 0
			for {
				_, err := p.Next()
				if err != nil {
					results <- result{events: n, retry: p.Retry(), err: err}
					return
				}
				n++
			}
		}()
	}
	<-opened
	<-opened
	resp, err := http.Post(base+"/publish", "application/json", strings.NewReader(`{"channel":"a","data":"hi"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	for range 2 {
		select {
		case r := <-results:
			assert.Equal(t, 1, r.events, "the event published before the drain")
			assert.Positive(t, r.retry, "a retry hint before the close")
			assert.True(t, errors.Is(r.err, context.Canceled) || r.err.Error() == "EOF", "clean end: %v", r.err)
		case <-time.After(5 * time.Second):
			require.FailNow(t, "stream not closed by the drain")
		}
	}
	select {
	case err := <-exited:
		require.NoError(t, err, "exit status 0")
		assert.Less(t, time.Since(start), 3*time.Second+time.Second, "within the drain window")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "hub did not exit")
	}
	exited <- nil // the cleanup waits on it too
}

// The hub re-executes itself with fixed initial goroutine stacks, unless
// GODEBUG already decides; the process keeps its PID.
func TestHubRunsWithFixedStacks(t *testing.T) {
	bin := squallBinary(t)
	for _, tc := range []struct{ given, want string }{
		{"", "GODEBUG=adaptivestackstart=0"},
		{"http2debug=0", "GODEBUG=http2debug=0,adaptivestackstart=0"},
		{"adaptivestackstart=1", "GODEBUG=adaptivestackstart=1"},
	} {
		addr := freeAddr(t)
		cmd := exec.Command(bin, "--addr", addr)
		cmd.Env = append(os.Environ(), "SQUALL_LOG_LEVEL=warn", "GODEBUG="+tc.given)
		require.NoError(t, cmd.Start())
		require.Eventually(t, func() bool {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return true
		}, 20*time.Second, 20*time.Millisecond)
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid))
		require.NoError(t, err)
		var godebug []string
		for kv := range strings.SplitSeq(string(environ), "\x00") {
			if strings.HasPrefix(kv, "GODEBUG=") {
				godebug = append(godebug, kv)
			}
		}
		assert.Equal(t, []string{tc.want}, godebug, "GODEBUG=%s given", tc.given)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, cmd.Wait(), "exit 0 after the re-exec")
	}
}
