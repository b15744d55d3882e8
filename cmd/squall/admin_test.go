package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/redistest"
	"github.com/squall-sse/squall/internal/ssetest"
)

// adminCommands are the commands docs/admin.md shows, run as they are
// (with the test server's address) by TestAdminFlagWiring.
const adminCommands = `
curl -s -H "Authorization: Bearer $SQUALL_ADMIN_SECRET" 'http://localhost:8080/admin/channels?prefix=room:&limit=100'
curl -s -H "Authorization: Bearer $SQUALL_ADMIN_SECRET" http://localhost:8080/admin/channels/room:42
curl -s -H "Authorization: Bearer $SQUALL_ADMIN_SECRET" -d '{"subject":"user-17","reason":"account suspended","retry_ms":3600000}' http://localhost:8080/admin/disconnect
`

// adminAnswers are what the commands print, in order.
var adminAnswers = []string{
	`{"channels":[{"channel":"room:42","subscribers":1}],"scope":"node"}`,
	`{"channel":"room:42","subscribers":1,"scope":"node"}`,
	`{"disconnected":1,"scope":"node"}`,
}

// closedFrame is the last frame the disconnected stream gets, as
// docs/admin.md shows it.
const closedFrame = `event: squall-closed
retry: 3600000
data: {"reason":"account suspended","retry_ms":3600000}

`

func TestAdminSecretFlag(t *testing.T) {
	tests := []struct {
		name, env, err string
	}{
		{"off", "", ""},
		{"at the bound", strings.Repeat("s", httpedge.MinAdminSecret), ""},
		{"under the bound", strings.Repeat("s", httpedge.MinAdminSecret-1), "--admin-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parse(nil, func(k string) string { return map[string]string{"SQUALL_ADMIN_SECRET": tt.env}[k] })
			require.NoError(t, err)
			var cfg squall.Config
			err = o.edge.configure(&cfg, slog.New(slog.DiscardHandler))
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.env, cfg.AdminSecret)
		})
	}
}

// TestAdminFlagWiring runs the hub in process with SQUALL_ADMIN_SECRET and
// runs docs/admin.md's commands with curl: presence, then a disconnect by
// subject that the stream sees as squall-closed and the end of the stream.
func TestAdminFlagWiring(t *testing.T) {
	jwtSecret := strings.Repeat("j", 32)
	adminSecret := "an-admin-secret-for-the-test"
	addr := freeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	env := map[string]string{"SQUALL_ADMIN_SECRET": adminSecret, "SQUALL_JWT_SECRET": jwtSecret}
	ran := make(chan error, 1)
	go func() {
		ran <- run(ctx, []string{"--addr", addr, "--drain", "1s", "--log-level", "warn"},
			func(k string) string { return env[k] }, os.Stderr)
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

	c := httpedge.Claims{Subscribe: []string{"room:*"}}
	c.Subject = "user-17"
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
	tok, err := httpedge.SignToken([]byte(jwtSecret), c)
	require.NoError(t, err)
	stream := ssetest.Subscribe(t, base+"/events?channel=room:42",
		ssetest.Options{Header: http.Header{"Authorization": {"Bearer " + tok}}, Frames: true})

	lines := strings.Split(strings.TrimSpace(adminCommands), "\n")
	require.Len(t, lines, len(adminAnswers))
	for i, line := range lines {
		cmd := exec.Command("sh", "-c", strings.ReplaceAll(line, "http://localhost:8080", base))
		cmd.Env = append(os.Environ(), "SQUALL_ADMIN_SECRET="+adminSecret)
		out, err := cmd.Output()
		require.NoError(t, err, "%s", line)
		require.True(t, json.Valid(out), "%s printed %s", line, out)
		assert.JSONEq(t, adminAnswers[i], string(out), "%s", line)
	}
	assert.Equal(t, closedFrame, stream.NextFrame(t))
	stream.RequireEnded(t)

	stop()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "run did not return")
	}
}

// adminDo sends an admin request to h and decodes its JSON answer.
func adminDo(t *testing.T, h *runningHub, secret, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := h.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v), "%s %s", method, path)
	return resp.StatusCode, v
}

// counts is a presence page as channel -> subscribers.
func counts(v map[string]any) map[string]float64 {
	out := map[string]float64{}
	chs, _ := v["channels"].([]any)
	for _, c := range chs {
		m := c.(map[string]any)
		out[m["channel"].(string)] = m["subscribers"].(float64)
	}
	return out
}

// TestAdminCluster runs two hubs on one Redis with the admin API and a
// short report interval: presence is summed over both and paged, a
// disconnect sent to A closes the matching streams on B too (their clients
// see squall-closed), malformed admin messages on Redis are dropped and
// counted, and a stopped hub drops out of the answers.
func TestAdminCluster(t *testing.T) {
	const interval = 300 * time.Millisecond
	jwtSecret := strings.Repeat("j", 32)
	secret := "an-admin-secret-for-the-test"
	prefix := redistest.Prefix(t, sharedRedis)
	args := []string{"--redis", sharedRedis, "--redis-prefix", prefix, "--admin-secret", secret,
		"--admin-interval", interval.String(), "--jwt-secret", jwtSecret, "--log-level", "warn"}
	a := runHub(t, "http", &http.Client{}, args...)
	b := runHub(t, "http", &http.Client{}, args...)

	open := func(h *runningHub, channel, subject string) *ssetest.Client {
		c := httpedge.Claims{Subscribe: []string{"room:*"}}
		c.Subject = subject
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
		tok, err := httpedge.SignToken([]byte(jwtSecret), c)
		require.NoError(t, err)
		return ssetest.Subscribe(t, h.base+"/events?channel="+channel,
			ssetest.Options{Header: http.Header{"Authorization": {"Bearer " + tok}}, Frames: true})
	}
	a1 := open(a, "room:1", "user-1")
	a2 := open(a, "room:2", "user-2")
	b1 := open(b, "room:1", "user-1")
	b1bis := open(b, "room:1", "user-3")
	b3 := open(b, "room:3", "user-2")

	// The API allows 10 requests/s per node: poll below that.
	const tick = 150 * time.Millisecond
	want := map[string]float64{"room:1": 3, "room:2": 1, "room:3": 1}
	var page map[string]any
	require.Eventually(t, func() bool {
		_, page = adminDo(t, a, secret, "GET", "/admin/channels", "")
		return assert.ObjectsAreEqual(want, counts(page)) && page["nodes"] == 2.0
	}, 10*time.Second, tick, "counts summed over both hubs: %v", page)
	assert.Equal(t, "cluster", page["scope"])
	assert.Equal(t, float64(interval.Milliseconds()), page["interval_ms"])
	asOf, err := time.Parse(time.RFC3339Nano, page["as_of"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), asOf, 3*interval, "the interval read is the last finished one")

	// Paging across hubs, from the same snapshot: B answers too.
	_, v := adminDo(t, b, secret, "GET", "/admin/channels?limit=2", "")
	assert.Equal(t, map[string]float64{"room:1": 3, "room:2": 1}, counts(v))
	assert.Equal(t, "room:2", v["next"])
	_, v = adminDo(t, b, secret, "GET", "/admin/channels?limit=2&after=room:2", "")
	assert.Equal(t, map[string]float64{"room:3": 1}, counts(v))
	assert.Nil(t, v["next"])
	_, v = adminDo(t, b, secret, "GET", "/admin/channels?prefix=room:3", "")
	assert.Equal(t, map[string]float64{"room:3": 1}, counts(v))
	status, v := adminDo(t, b, secret, "GET", "/admin/channels/room:1", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, 3.0, v["subscribers"])
	assert.Equal(t, "cluster", v["scope"])

	// A disconnect for nobody: both nodes answer once B's admin
	// subscription is up.
	require.Eventually(t, func() bool {
		_, v = adminDo(t, a, secret, "POST", "/admin/disconnect", `{"subject":"nobody"}`)
		return v["nodes_acknowledged"] == 2.0
	}, 10*time.Second, tick, "B acknowledges: %v", v)
	assert.Equal(t, map[string]any{"disconnected": 0.0, "disconnected_here": 0.0,
		"nodes_acknowledged": 2.0, "nodes_expected": 2.0, "scope": "cluster"}, v)

	// Malformed admin messages written straight to Redis: each node drops
	// and counts them, and none reaches a stream (a reason with a newline
	// would be an injection if it were framed raw).
	rdb := redistest.Client(t, sharedRedis)
	id := strings.Repeat("a", 32)
	bad := []string{
		`not json`,
		`{"id":"` + id + `","from":"` + id + `","channel":"room:1","reason":"x\ndata: injected","retry_ms":1}`,
		`{"id":"` + id + `","from":"` + id + `","channel":"room:1","reason":"r","retry_ms":1,"extra":1}`,
		`{"id":"` + id + `","from":"` + id + `","channel":"room 1","reason":"r","retry_ms":1}`,
		`{"id":"` + id + `","from":"` + id + `","reason":"r","retry_ms":1}`,
		`{"id":"` + id + `","from":"` + id + `","channel":"room:1","reason":"r","retry_ms":86400001}`,
		`{"id":"` + id + `","from":"` + id + `","subject":"` + strings.Repeat("s", 9000) + `","reason":"r","retry_ms":1}`,
		`{"id":"` + id + `","from":"` + id + `","subject":"` + strings.Repeat("s", httpedge.MaxSubject+1) + `","reason":"r","retry_ms":1}`,
	}
	// At the bounds: valid, so both nodes run it (it matches no stream)
	// and acknowledge it on the inbox of the node "id" it claims to be from.
	inbox := rdb.Subscribe(context.Background(), prefix+"!admin!"+id)
	defer inbox.Close()
	_, err = inbox.Receive(context.Background()) // the subscription's confirmation
	require.NoError(t, err)
	good := `{"id":"` + id + `","from":"` + id + `","subject":"` + strings.Repeat("s", httpedge.MaxSubject) +
		`","reason":"` + strings.Repeat("r", httpedge.MaxDisconnectReason) + `","retry_ms":86400000}`
	require.NoError(t, rdb.Publish(context.Background(), prefix+"!admin", good).Err())
	acked := map[string]bool{}
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := inbox.ReceiveMessage(ctx)
		cancel()
		require.NoError(t, err, "acknowledgement of a request at the bounds")
		var ack struct {
			ID           string `json:"id"`
			Node         string `json:"node"`
			Disconnected int    `json:"disconnected"`
		}
		require.NoError(t, json.Unmarshal([]byte(m.Payload), &ack))
		assert.Equal(t, id, ack.ID)
		assert.Zero(t, ack.Disconnected)
		acked[ack.Node] = true
	}
	assert.Len(t, acked, 2, "both nodes acknowledged")
	for _, m := range bad {
		require.NoError(t, rdb.Publish(context.Background(), prefix+"!admin", m).Err())
	}
	for _, h := range []*runningHub{a, b} {
		require.Eventually(t, func() bool {
			return strings.Contains(h.metrics(t), "squall_admin_messages_malformed_total "+strconv.Itoa(len(bad))+"\n")
		}, 10*time.Second, 20*time.Millisecond, "malformed admin messages counted on %s", h.addr)
	}

	// By subject, sent to A: user-2's streams on A and on B close.
	status, v = adminDo(t, a, secret, "POST", "/admin/disconnect", `{"subject":"user-2","reason":"account suspended","retry_ms":3600000}`)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, map[string]any{"disconnected": 2.0, "disconnected_here": 1.0,
		"nodes_acknowledged": 2.0, "nodes_expected": 2.0, "scope": "cluster"}, v)
	for _, s := range []*ssetest.Client{a2, b3} {
		assert.Equal(t, closedFrame, s.NextFrame(t))
		s.RequireEnded(t)
	}

	// By channel, sent to A: room:1's streams on both close.
	_, v = adminDo(t, a, secret, "POST", "/admin/disconnect", `{"channel":"room:1","reason":"moving","retry_ms":1000}`)
	assert.Equal(t, 3.0, v["disconnected"], "%v", v)
	assert.Equal(t, 1.0, v["disconnected_here"], "%v", v)
	for _, s := range []*ssetest.Client{a1, b1, b1bis} {
		assert.Equal(t, "event: squall-closed\nretry: 1000\ndata: {\"reason\":\"moving\",\"retry_ms\":1000}\n\n", s.NextFrame(t))
		s.RequireEnded(t)
	}

	// B keeps a stream and stops: it drops out of A's answers within two
	// intervals of its last report.
	open(b, "room:9", "user-9")
	require.Eventually(t, func() bool {
		_, v = adminDo(t, a, secret, "GET", "/admin/channels/room:9", "")
		return v["subscribers"] == 1.0
	}, 10*time.Second, tick, "B's stream counted: %v", v)
	b.stop()
	stopped := time.Now()
	require.Eventually(t, func() bool {
		_, v = adminDo(t, a, secret, "GET", "/admin/channels/room:9", "")
		return v["subscribers"] == 0.0 && v["nodes"] == 1.0
	}, 10*time.Second, tick, "B dropped out: %v", v)
	t.Logf("B dropped out %v after it stopped (interval %v)", time.Since(stopped).Round(time.Millisecond), interval)
}

// --admin-interval defaults to 5s, and under 10ms the hub refuses to start
// in cluster mode with the admin API on.
func TestAdminIntervalFlag(t *testing.T) {
	o, err := parse(nil, func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, o.edge.adminInterval)
	err = run(t.Context(), []string{"--addr", freeAddr(t), "--redis", "redis://127.0.0.1:1",
		"--admin-secret", "an-admin-secret-for-the-test", "--admin-interval", "9ms", "--log-level", "error"},
		func(string) string { return "" }, os.Stderr)
	assert.ErrorContains(t, err, "--admin-interval")
}
