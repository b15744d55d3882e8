package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/internal/ssetest"
)

// sample is the value of the first series of text matching pattern, or -1.
func sample(text, pattern string) float64 {
	m := regexp.MustCompile(`(?m)^` + pattern + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[len(m)-1], 64)
	if err != nil {
		return -1
	}
	return v
}

// TestObservabilitySeriesAfterProvoking runs the hub on a Redis of its own
// and scrapes each series of issue 19 after provoking it: Redis command
// latency, a replay page, a malformed message, and, with Redis killed, each
// dependency down in /readyz and /metrics and a refused publish.
func TestObservabilitySeriesAfterProvoking(t *testing.T) {
	url, proc := privateRedis(t)
	h := runHub(t, "http", &http.Client{}, "--redis", url, "--redis-prefix", "obs")
	m := h.metrics(t)
	assert.Equal(t, 1.0, sample(m, `squall_dependency_up\{dependency="redis_subscription"\}`))
	assert.Equal(t, 1.0, sample(m, `squall_dependency_up\{dependency="redis_publish"\}`))

	h.publish(t, "o", "first")
	h.publish(t, "o", "second")
	m = h.metrics(t)
	assert.Positive(t, sample(m, `squall_redis_command_duration_seconds_count\{command="(evalsha|eval)",result="ok"\}`),
		"the publish script's round trips:\n%s", m)

	// A resume after the first event replays the second from Redis.
	first := h.subscribe(t, "channel=o")
	h.publish(t, "o", "third")
	id := first.Next(t).ID
	first.Close()
	resumed := ssetest.Subscribe(t, h.base+"/events?channel=o", ssetest.Options{Header: http.Header{"Last-Event-ID": {id}}})
	h.publish(t, "o", "fourth")
	assert.Equal(t, "fourth", string(resumed.Next(t).Data))
	m = h.metrics(t)
	assert.Equal(t, 1.0, sample(m, `squall_replay_total\{result="hit"\}`), "%s", m)
	assert.GreaterOrEqual(t, sample(m, `squall_replay_page_duration_seconds_count`), 1.0)
	assert.GreaterOrEqual(t, sample(m, `squall_replay_page_events_count`), 1.0)

	// A message that is not an envelope, from any program with PUBLISH,
	// on a channel this node has a stream on (with per-channel interest,
	// a node hears only those).
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	require.NoError(t, rdb.Publish(context.Background(), "obs:o", "not an envelope").Err())
	require.Eventually(t, func() bool {
		return sample(h.metrics(t), `squall_relay_dropped_total\{reason="malformed"\}`) == 1
	}, 10*time.Second, 20*time.Millisecond)
	m = h.metrics(t)
	assert.Positive(t, sample(m, `squall_relay_received_messages_total`), "what the subscription read, the malformed message included")
	assert.GreaterOrEqual(t, sample(m, `squall_relay_received_bytes_total`), float64(len("not an envelope")))
	resumed.Close()

	require.NoError(t, proc.Process.Kill())
	var body struct {
		Error        string            `json:"error"`
		Dependencies map[string]string `json:"dependencies"`
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body.Dependencies = nil
		return resp.StatusCode == http.StatusServiceUnavailable && json.NewDecoder(resp.Body).Decode(&body) == nil &&
			strings.HasPrefix(body.Dependencies["redis_subscription"], "down: ") &&
			strings.HasPrefix(body.Dependencies["redis_publish"], "down: ")
	}, 20*time.Second, 20*time.Millisecond, "/readyz names both dependencies down: %+v", body)
	assert.NotEmpty(t, body.Error)
	assert.Equal(t, http.StatusServiceUnavailable, h.status(t, "POST", "/publish", `{"channel":"o","data":"lost"}`))
	m = h.metrics(t)
	assert.Equal(t, 0.0, sample(m, `squall_dependency_up\{dependency="redis_subscription"\}`))
	assert.Equal(t, 0.0, sample(m, `squall_dependency_up\{dependency="redis_publish"\}`))
	assert.Equal(t, 1.0, sample(m, `squall_publish_requests_total\{outcome="unavailable"\}`))
	assert.Positive(t, sample(m, `squall_redis_command_duration_seconds_count\{command="[a-z]+",result="error"\}`))
}
