package redisrelay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/redisrelay"
)

// postOnce publishes data with an Idempotency-Key over HTTP and returns the
// status and whether the answer says duplicate.
func postOnce(url, data, key string) (int, bool, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/publish",
		strings.NewReader(`{"channel":"a","data":"`+data+`"}`))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Duplicate bool `json:"duplicate"`
	}
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out.Duplicate, nil
}

// TestHostileAmbiguousOutcome: while Redis's clients are killed every 25 ms,
// then Redis refuses writes (OOM) for 0.5 s, then is stopped for 2.5 s, publishers keep publishing through two
// hubs. No publish answered 503 (not taken) is ever delivered or in the
// history, and retrying every 504 (outcome unknown) with its key delivers
// each event exactly once to the subscribers of both hubs.
func TestHostileAmbiguousOutcome(t *testing.T) {
	srv := startRedis(t)
	// History holds every event of the test, so that it can be checked whole.
	rc := redisrelay.Config{URL: srv.url(), Prefix: "o", PingInterval: 100 * time.Millisecond, History: 1 << 20}
	a := newNode(t, rc, actors.Config{})
	b := newNode(t, rc, actors.Config{})
	a.requireReady(t)
	b.requireReady(t)
	ca := a.subscribe(t, "channel=a", "")
	cb := b.subscribe(t, "channel=a", "")
	a.requireChannels(t, 1)
	b.requireChannels(t, 1)
	// The relays catch up from the last event they relayed on a channel.
	a.mustPublish(t, "a", "first")
	ca.RequireNext(t, "first")
	cb.RequireNext(t, "first")

	admin := rawClient(t, srv.url())
	ctx := context.Background()
	var mu sync.Mutex
	outcome := map[string]int{} // key → status of its first answer
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("p%d-%d", p, i)
				code, _, err := postOnce([]*node{a, b}[i%2].srv.URL, key, key)
				if err != nil {
					code = -1
				}
				mu.Lock()
				outcome[key] = code
				mu.Unlock()
			}
		})
	}
	// CLIENT KILL of every hub connection (normal and pub/sub) every 25 ms.
	killUntil := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(killUntil) {
		_ = admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal").Err()
		_ = admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err()
		<-time.After(25 * time.Millisecond) // the fault's period
	}
	// Redis refusing writes: a refusal is certain, so 503.
	require.NoError(t, admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	require.NoError(t, admin.ConfigSet(ctx, "maxmemory", "1").Err())
	<-time.After(500 * time.Millisecond) // the refusal under test
	require.NoError(t, admin.ConfigSet(ctx, "maxmemory", "0").Err())
	srv.signal(syscall.SIGSTOP)
	<-time.After(2500 * time.Millisecond) // the outage under test
	srv.signal(syscall.SIGCONT)
	close(stop)
	wg.Wait()
	a.requireReady(t)
	b.requireReady(t)

	counts := map[int]int{}
	var retry []string
	for key, code := range outcome {
		counts[code]++
		if code != http.StatusAccepted && code != http.StatusServiceUnavailable {
			retry = append(retry, key)
		}
	}
	duplicates := 0
	for _, key := range retry {
		code, dup, err := postOnce(a.srv.URL, key, key)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code, "retry of %s", key)
		if dup {
			duplicates++
		}
	}
	t.Logf("first answers by status: %v (-1: transport error); %d retried, of which %d were duplicates (had been taken)",
		counts, len(retry), duplicates)
	assert.Positive(t, counts[http.StatusAccepted])
	assert.Positive(t, counts[http.StatusGatewayTimeout], "the faults made some outcomes unknown")
	assert.Positive(t, counts[http.StatusServiceUnavailable], "and some publishes certainly refused")

	a.mustPublish(t, "a", "end")
	for _, c := range []*client{ca, cb} {
		seen := map[string]int{}
		for {
			d := string(c.Next(t).Data)
			if d == "end" {
				break
			}
			seen[d]++
		}
		for key, code := range outcome {
			switch code {
			case http.StatusServiceUnavailable:
				assert.Zero(t, seen[key], "%s was answered 503 but delivered", key)
			default:
				assert.Equal(t, 1, seen[key], "%s (first answer %d) delivered exactly once", key, code)
			}
		}
	}
	entries, err := admin.XRange(ctx, a.relay.StreamKey("a"), "-", "+").Result()
	require.NoError(t, err)
	inHistory := map[string]int{}
	for _, e := range entries {
		body, _ := e.Values["e"].(string)
		var v struct{ Data string }
		require.NoError(t, json.Unmarshal([]byte(body), &v))
		inHistory[v.Data]++
	}
	for key, code := range outcome {
		if code == http.StatusServiceUnavailable {
			assert.Zero(t, inHistory[key], "%s was answered 503 but is in the history", key)
		} else {
			assert.Equal(t, 1, inHistory[key], "%s is in the history once", key)
		}
	}
}
