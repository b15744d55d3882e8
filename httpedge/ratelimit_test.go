package httpedge_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// A rate slow enough that no token comes back while a test runs: a
// refusal is certain, and Retry-After is known.
const slowRate = 0.001

func TestPublishRatePerAddress(t *testing.T) {
	s, _ := metricsServer(t, actors.Config{}, httpedge.Config{TrustProxy: true,
		PublishLimits: httpedge.PublishLimits{PerAddress: httpedge.Rate{PerSecond: slowRate, Burst: 3}}})
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {"203.0.113.9, " + ip}} }
	body := `{"channel":"rate","data":1}`
	for i := range 3 {
		assert.Equal(t, http.StatusAccepted, do(t, "POST", s.srv.URL+"/publish", body, from("198.51.100.1")).status, "burst %d", i)
	}
	r := do(t, "POST", s.srv.URL+"/publish", body, from("198.51.100.1"))
	assert.Equal(t, http.StatusTooManyRequests, r.status, "past the burst")
	assert.Equal(t, "1000", r.header.Get("Retry-After"), "one token per 1000 s")
	assert.Contains(t, r.err, "too many publishes from your address")
	assert.Equal(t, http.StatusAccepted, do(t, "POST", s.srv.URL+"/publish", body, from("198.51.100.2")).status,
		"another forwarded address has its own bucket (the last hop counts, not what the client claimed)")
	// The address is checked before the token and the body: a flood of
	// junk is refused for its rate too.
	assert.Equal(t, http.StatusTooManyRequests, do(t, "POST", s.srv.URL+"/publish", "junk", from("198.51.100.1")).status)
	requireMetrics(t, s.srv.URL, map[string]float64{
		`squall_limit_rejections_total{limit="publish_rate_address"}`: 2,
		`squall_limit_rejections_total{limit="publish_rate_subject"}`: 0,
		`squall_publish_rate_keys{key="address"}`:                     2,
	})
}

func TestPublishRatePerSubject(t *testing.T) {
	s, _ := metricsServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{Secret: secret},
		PublishLimits: httpedge.PublishLimits{PerSubject: httpedge.Rate{PerSecond: slowRate, Burst: 2}}})
	as := func(sub string) http.Header {
		return bearer(sign(t, secret, claims(sub, time.Hour, []string{"*"}, nil)))
	}
	body := `{"channel":"rate","data":1}`
	for range 2 {
		require.Equal(t, http.StatusAccepted, do(t, "POST", s.srv.URL+"/publish", body, as("alice")).status)
	}
	r := do(t, "POST", s.srv.URL+"/publish", body, as("alice"))
	assert.Equal(t, http.StatusTooManyRequests, r.status, "a new token of the same subject shares its bucket")
	assert.Contains(t, r.err, "too many publishes for your token's subject")
	assert.Equal(t, "1000", r.header.Get("Retry-After"))
	assert.Equal(t, http.StatusAccepted, do(t, "POST", s.srv.URL+"/publish", body, as("bob")).status, "from the same address")
	requireMetrics(t, s.srv.URL, map[string]float64{
		`squall_limit_rejections_total{limit="publish_rate_subject"}`: 1,
		`squall_publish_rate_keys{key="subject"}`:                     2,
	})
}
