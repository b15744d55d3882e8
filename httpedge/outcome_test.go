package httpedge_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// TestReadyzNamesTheDependencyDown: /readyz and squall_dependency_up
// follow each dependency, and the 503 says which one is down.
func TestReadyzNamesTheDependencyDown(t *testing.T) {
	var down atomic.Bool
	deps := []httpedge.Dependency{
		{Name: "always", Ready: func() error { return nil }},
		{Name: "flaky", Ready: func() error {
			if down.Load() {
				return errors.New("gone fishing")
			}
			return nil
		}},
	}
	m := httpedge.NewMetrics()
	m.ObserveDependencies(deps)
	s := newHubServer(t, actors.Config{Observer: m}, httpedge.Config{Metrics: m, Dependencies: deps})
	assert.Equal(t, http.StatusOK, do(t, "GET", s.srv.URL+"/readyz", "", nil).status)
	requireMetrics(t, s.srv.URL, map[string]float64{`squall_dependency_up{dependency="flaky"}`: 1, `squall_dependency_up{dependency="always"}`: 1})

	down.Store(true)
	resp, err := http.Get(s.srv.URL + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	var body struct {
		Error        string            `json:"error"`
		Dependencies map[string]string `json:"dependencies"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "flaky down: gone fishing", body.Error)
	assert.Equal(t, map[string]string{"always": "up", "flaky": "down: gone fishing"}, body.Dependencies)
	requireMetrics(t, s.srv.URL, map[string]float64{`squall_dependency_up{dependency="flaky"}`: 0, `squall_dependency_up{dependency="always"}`: 1})
}
