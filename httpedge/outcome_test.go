package httpedge_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// TestPublishOutcomesAreCounted provokes each outcome of POST /publish and
// scrapes its series.
func TestPublishOutcomesAreCounted(t *testing.T) {
	s, _ := metricsServer(t, actors.Config{}, httpedge.Config{MaxBody: 64, Auth: &httpedge.Auth{Secret: secret},
		PublishLimits: httpedge.PublishLimits{PerSubject: httpedge.Rate{PerSecond: slowRate, Burst: 2}}})
	ok := bearer(sign(t, secret, claims("pub", time.Hour, []string{"o"}, nil)))
	url := s.srv.URL + "/publish"
	assert.Equal(t, http.StatusAccepted, do(t, "POST", url, `{"channel":"o","data":1}`, ok).status)
	assert.Equal(t, http.StatusBadRequest, do(t, "POST", url, `{"channel":"o"}`, ok).status)
	assert.Equal(t, http.StatusRequestEntityTooLarge, do(t, "POST", url, `{"channel":"o","data":"`+strings.Repeat("x", 100)+`"}`,
		bearer(sign(t, secret, claims("big", time.Hour, []string{"o"}, nil)))).status)
	assert.Equal(t, http.StatusTooManyRequests, do(t, "POST", url, `{"channel":"o","data":1}`, ok).status, "the third of pub's burst of 2")
	assert.Equal(t, http.StatusUnauthorized, do(t, "POST", url, `{"channel":"o","data":1}`, nil).status)
	assert.Equal(t, http.StatusForbidden, do(t, "POST", url, `{"channel":"elsewhere","data":1}`,
		bearer(sign(t, secret, claims("other", time.Hour, []string{"o"}, nil)))).status)
	requireMetrics(t, s.srv.URL, map[string]float64{
		`squall_publish_requests_total{outcome="accepted"}`:        1,
		`squall_publish_requests_total{outcome="invalid"}`:         1,
		`squall_publish_requests_total{outcome="too_large"}`:       1,
		`squall_publish_requests_total{outcome="rate_limited"}`:    1,
		`squall_publish_requests_total{outcome="unauthorized"}`:    1,
		`squall_publish_requests_total{outcome="forbidden"}`:       1,
		`squall_publish_requests_total{outcome="unavailable"}`:     0,
		`squall_publish_requests_total{outcome="outcome_unknown"}`: 0,
		`squall_publish_requests_total{outcome="abandoned"}`:       0,
	})
}
