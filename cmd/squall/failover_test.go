package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/client"
)

// sharedRedis is the redis-server every machine running the suite has.
const sharedRedis = "redis://127.0.0.1:6379/0"

// hubProcess is a real squall binary in cluster mode.
type hubProcess struct {
	addr   string
	cmd    *exec.Cmd
	exited chan error
}

func startHub(t *testing.T, bin, prefix string, extra ...string) *hubProcess {
	t.Helper()
	h := &hubProcess{addr: freeAddr(t), exited: make(chan error, 1)}
	args := append([]string{"--addr", h.addr, "--redis", sharedRedis, "--redis-prefix", prefix}, extra...)
	h.cmd = exec.Command(bin, args...)
	h.cmd.Env = append(os.Environ(), "SQUALL_LOG_LEVEL=warn")
	h.cmd.Stderr = os.Stderr
	require.NoError(t, h.cmd.Start())
	go func() { h.exited <- h.cmd.Wait() }()
	t.Cleanup(func() {
		_ = h.cmd.Process.Kill()
		<-h.exited
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + h.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "hub on %s ready (subscribed to Redis)", h.addr)
	return h
}

// testPrefix is a Redis prefix of this test alone, whose keys are deleted
// at cleanup.
func testPrefix(t *testing.T) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "squalltest-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		opt, err := redis.ParseURL(sharedRedis)
		require.NoError(t, err)
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// failoverTransport stands in for a load balancer: it dials the first hub
// that accepts, in order, so that clients of a dead hub land on the next.
func failoverTransport(addrs ...string) *http.Transport {
	var d net.Dialer
	return &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var errs []error
			for _, a := range addrs {
				c, err := d.DialContext(ctx, network, a)
				if err == nil {
					return c, nil
				}
				errs = append(errs, err)
			}
			return nil, errors.Join(errs...)
		},
	}
}

// TestSIGKILLedHubClientsResumeOnAnother kills a hub with SIGKILL while its
// clients stream and a publisher keeps publishing on the other hub: every
// client reconnects to the survivor with Last-Event-ID and its whole
// received sequence is exactly the published one, no gap, no duplicate, no
// reset.
func TestSIGKILLedHubClientsResumeOnAnother(t *testing.T) {
	bin := squallBinary(t)
	prefix := testPrefix(t)
	a := startHub(t, bin, prefix)
	b := startHub(t, bin, prefix)

	const (
		clients = 20
		total   = 1500
		killAt  = 500
	)
	httpc := &http.Client{Transport: failoverTransport(a.addr, b.addr)}
	t.Cleanup(httpc.CloseIdleConnections)
	var connected sync.WaitGroup
	connected.Add(clients)
	reconnects := atomic.Int64{}
	type result struct {
		seqs []int
		err  error
	}
	results := make(chan result, clients)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range clients {
		var once sync.Once
		s, err := client.Connect(ctx, "http://squall.test/events?channel=feed", client.Config{
			HTTPClient:   httpc,
			InitialRetry: 20 * time.Millisecond,
			MaxRetry:     200 * time.Millisecond,
			OnConnect: func(ci client.ConnectInfo) {
				once.Do(connected.Done)
				if ci.Attempt > 1 {
					reconnects.Add(1)
				}
			},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		go func() {
			var r result
			for len(r.seqs) < total {
				ev, err := s.Next(ctx)
				if err != nil {
					r.err = err
					break
				}
				if ev.Event != client.MessageEvent {
					r.err = fmt.Errorf("unexpected %q event: %s", ev.Event, ev.Data)
					break
				}
				n, err := strconv.Atoi(string(ev.Data))
				if err != nil {
					r.err = err
					break
				}
				r.seqs = append(r.seqs, n)
			}
			results <- r
		}()
	}
	// Connect returns once the response headers arrived, and the hub sends
	// them only once the stream has joined its channel: from here on,
	// nothing published is missed.
	connected.Wait()

	publish := func(n int) {
		resp, err := http.Post("http://"+b.addr+"/publish", "application/json",
			strings.NewReader(fmt.Sprintf(`{"channel":"feed","data":"%d"}`, n)))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	for n := range total {
		if n == killAt {
			require.NoError(t, a.cmd.Process.Signal(os.Kill))
		}
		publish(n)
	}

	want := make([]int, total)
	for i := range want {
		want[i] = i
	}
	for range clients {
		select {
		case r := <-results:
			require.NoError(t, r.err)
			require.Equal(t, want, r.seqs, "exactly the published sequence")
		case <-ctx.Done():
			require.FailNow(t, "clients did not receive every event")
		}
	}
	err := <-a.exited
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, "signal: killed", exit.Error())
	a.exited <- err // for the cleanup
	assert.Equal(t, int64(clients), reconnects.Load(), "every client of the killed hub reconnected once")
	t.Logf("%d clients, %d events, hub killed after %d: %d reconnects, nothing lost or repeated", clients, total, killAt, reconnects.Load())
}
