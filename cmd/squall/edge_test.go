package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

func TestEdgeFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		origins []string
		err     string
	}{
		{"repeated flag", []string{"--cors-origin", "https://a.example", "--cors-origin", "http://localhost:3000"}, nil,
			[]string{"https://a.example", "http://localhost:3000"}, ""},
		{"comma-separated environment", nil, map[string]string{"SQUALL_CORS_ORIGIN": "https://a.example, *"},
			[]string{"https://a.example", "*"}, ""},
		{"a path is not an origin", []string{"--cors-origin", "https://a.example/app"}, nil, nil, "invalid origin"},
		{"a bad environment origin", nil, map[string]string{"SQUALL_CORS_ORIGIN": "a.example"}, nil, "SQUALL_CORS_ORIGIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parse(tt.args, func(k string) string { return tt.env[k] })
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.origins, []string(o.edge.corsOrigins))
		})
	}

	o, err := parse(nil, func(k string) string { return map[string]string{"SQUALL_JWT_SECRET": "s3cret"}[k] })
	require.NoError(t, err)
	assert.Equal(t, "s3cret", o.edge.jwtSecret, "the secret from the environment")
	assert.Equal(t, "squall_token", o.edge.authCookie)
	assert.Equal(t, httpedge.DefaultMaxStreams, o.edge.maxStreams)
	assert.Zero(t, o.edge.maxStreamsPerIP, "no per-IP limit unless asked: behind a proxy every client shares its address")
	assert.True(t, o.edge.demo)

	o, err = parse([]string{"--max-channels", "0"}, func(string) string { return "" })
	require.NoError(t, err)
	err = o.edge.configure(&squall.Config{}, slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, err, "--max-channels")
}

// TestEdgeWiring runs the hub in process with the edge flags on and checks
// each piece over a real socket, then cancels it as a SIGTERM would.
func TestEdgeWiring(t *testing.T) {
	const secretKey = "an HS256 secret of 32 bytes, ok!"
	addr := freeAddr(t)
	logFile, err := os.CreateTemp(t.TempDir(), "log")
	require.NoError(t, err)
	defer logFile.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan error, 1)
	go func() {
		ran <- run(ctx, []string{"--addr", addr, "--cors-origin", "https://app.example", "--max-streams-per-ip", "1",
			"--drain", "2s", "--log-format", "json", "--heartbeat", "0"},
			func(k string) string { return map[string]string{"SQUALL_JWT_SECRET": secretKey}[k] }, logFile)
	}()
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond, "hub ready")

	c := httpedge.Claims{Publish: []string{"room:*"}, Subscribe: []string{"room:*"}}
	c.Subject = "u1"
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
	tok, err := httpedge.SignToken([]byte(secretKey), c)
	require.NoError(t, err)

	status := func(method, path, body string, h http.Header) int {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, status("GET", "/", "", nil), "demo page")
	assert.Equal(t, http.StatusUnauthorized, status("GET", "/events?channel=room:1", "", nil))
	assert.Equal(t, http.StatusNoContent, status("OPTIONS", "/publish", "", http.Header{
		"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}}), "preflight")

	req, err := http.NewRequest("GET", base+"/events?channel=room:1", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: "squall_token", Value: tok})
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, http.StatusTooManyRequests, status("GET", "/events?channel=room:1&access_token="+tok, "", nil), "one stream per address")

	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	assert.Equal(t, http.StatusAccepted, status("POST", "/publish", `{"channel":"room:1","data":"hi"}`, bearer))
	assert.Equal(t, http.StatusForbidden, status("POST", "/publish", `{"channel":"lobby","data":"hi"}`, bearer))
	p := sse.NewParser(bufio.NewReader(resp.Body))
	ev, err := p.Next()
	require.NoError(t, err)
	assert.Equal(t, "hi", string(ev.Data))

	// The connection actor counts a delivery once its write returns, which
	// can be after the client has read the bytes: the counters are polled.
	var metrics []byte
	want := []string{
		"squall_streams_open 1", "squall_events_published_total 1", "squall_events_delivered_total 1",
		`squall_auth_failures_total{code="401"} 1`, `squall_auth_failures_total{code="403"} 1`,
		`squall_limit_rejections_total{limit="streams_per_ip"} 1`, "squall_relay_up 1",
	}
	if !assert.Eventually(t, func() bool {
		mresp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer mresp.Body.Close()
		if metrics, err = io.ReadAll(mresp.Body); err != nil {
			return false
		}
		for _, line := range want {
			if !strings.Contains(string(metrics), "\n"+line+"\n") {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond) {
		t.Logf("metrics after one delivery:\n%s", metrics)
	}

	stop() // what SIGTERM does
	_, err = p.Next()
	assert.ErrorIs(t, err, io.EOF, "the drain closes the stream")
	assert.GreaterOrEqual(t, p.Retry(), time.Second, "after a retry hint of 1-2 s")
	assert.LessOrEqual(t, p.Retry(), 2*time.Second)
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "run did not return")
	}

	// One line per stream open and close, with the token's subject; none
	// per event.
	logs, err := os.ReadFile(logFile.Name())
	require.NoError(t, err)
	var streamLines []map[string]any
	for line := range strings.Lines(string(logs)) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "a JSON log line: %s", line)
		if msg := rec["msg"].(string); strings.HasPrefix(msg, "stream ") {
			streamLines = append(streamLines, rec)
		}
	}
	require.Len(t, streamLines, 2, "%s", logs)
	assert.Equal(t, "stream open", streamLines[0]["msg"])
	assert.Equal(t, "u1", streamLines[0]["sub"])
	assert.Equal(t, "stream close", streamLines[1]["msg"])
	assert.Equal(t, "shutdown", streamLines[1]["reason"])
	assert.Equal(t, "u1", streamLines[1]["sub"])
}
