package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/httpedge"
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
			var cfg httpedge.Config
			_, err = o.edge.configure(&cfg, slog.New(slog.DiscardHandler))
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
