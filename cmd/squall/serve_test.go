package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPublishRateFlags: the publish limits are off unless asked for, and
// on when asked (a 429 over the burst).
func TestPublishRateFlags(t *testing.T) {
	o, err := parse(nil, func(string) string { return "" })
	require.NoError(t, err)
	l, err := o.serve.publish.limits()
	require.NoError(t, err)
	assert.Zero(t, l.PerSubject.PerSecond, "off by default")
	assert.Zero(t, l.PerAddress.PerSecond, "off by default")

	o, err = parse([]string{"--publish-rate-keys", "0"}, func(string) string { return "" })
	require.NoError(t, err)
	_, err = o.serve.publish.limits()
	assert.ErrorContains(t, err, "--publish-rate-keys")

	h := runHub(t, "http", &http.Client{}, "--publish-rate-per-ip", "0.01", "--publish-burst-per-ip", "2")
	h.publish(t, "r", "1")
	h.publish(t, "r", "2")
	assert.Equal(t, http.StatusTooManyRequests, h.status(t, "POST", "/publish", `{"channel":"r","data":"3"}`))
	assert.Contains(t, h.metrics(t), `squall_limit_rejections_total{limit="publish_rate_address"} 1`)
}
