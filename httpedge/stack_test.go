//go:build !race

// The race detector enlarges every frame, so stack sizes only mean
// something without it; `make test` runs this file separately.

package httpedge_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
)

// An idle stream on /events over HTTP/1.1 holds one goroutine, the read
// that notices its client leaving, and none of net/http's buffers: the
// connection is taken over once the stream is open. An embedder's handler
// that calls Hub.Open and waits holds two (the handler and net/http's
// background read), and the opening must not leave the handler's stack
// deeper than net/http alone makes it (4 KB).
func TestIdleStreamStacks(t *testing.T) {
	// Goroutines must start at 2 KB, as in cmd/squall, not at the
	// runtime's running average, which would blur the measure; the
	// setting is read at start-up, so the test runs again in a child.
	const fixed = "adaptivestackstart=0"
	if !strings.Contains(os.Getenv("GODEBUG"), fixed) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleStreamStacks$", "-test.v")
		cmd.Env = append(os.Environ(), "GODEBUG="+fixed)
		out, err := cmd.CombinedOutput()
		t.Logf("child:\n%s", out)
		require.NoError(t, err, "the test failed in the child process")
		return
	}
	tests := []struct {
		name             string
		path             string
		maxStack, maxMem float64 // KB per idle stream
	}{
		// 2 KB for the read; the rest is the connection, the actor and
		// the stream's bookkeeping (the client's side of each connection
		// is counted too).
		{name: "events taken over", path: "/events", maxStack: 3, maxMem: 10},
		// 4 KB for the handler, 2 KB for the background read, 10 KB of
		// net/http buffers.
		{name: "Hub.Open from an embedder's handler", path: "/embedded", maxStack: 7, maxMem: 26},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := actorstest.NewHub(t, actors.Config{})
			mux := http.NewServeMux()
			mux.Handle("/events", httpedge.New(httpedge.Config{Hub: h}))
			mux.HandleFunc("/embedded", func(w http.ResponseWriter, r *http.Request) {
				httpedge.WriteHeaders(w, r)
				st, err := h.Open(w, actors.StreamOptions{Channels: r.URL.Query()["channel"]})
				if err != nil {
					return
				}
				st.Wait(r.Context())
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				_ = h.Drain(ctx, 0)
				srv.Close()
			})
			addr := strings.TrimPrefix(srv.URL, "http://")
			// Warm up: the first connections grow pools and tables the
			// measure should not count.
			openRaw(t, addr, tt.path, 50)
			require.Eventually(t, func() bool { return h.OpenStreams() == 50 }, wait, time.Millisecond)

			before := memInuse()
			const n = 400
			openRaw(t, addr, tt.path, n)
			require.Eventually(t, func() bool { return h.OpenStreams() == 50+n }, wait, time.Millisecond)
			after := memInuse()
			stack := float64(after.StackInuse-before.StackInuse) / n / 1024
			mem := (float64(after.StackInuse+after.HeapInuse) - float64(before.StackInuse+before.HeapInuse)) / n / 1024

			t.Logf("per idle stream: stack %.2f KB, heap+stack %.2f KB", stack, mem)
			require.Less(t, stack, tt.maxStack, "stack per idle stream (KB)")
			require.Less(t, mem, tt.maxMem, "heap+stack per idle stream (KB)")
		})
	}
}

func memInuse() runtime.MemStats {
	var m runtime.MemStats
	// Stacks shrink during a GC; the second one sees them settled.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m
}

// openRaw opens n streams over plain TCP, closed at the end of the test; a
// reader goroutine per stream would add its own stack to the measure.
func openRaw(t *testing.T, addr, path string, n int) {
	t.Helper()
	for i := range n {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = fmt.Fprintf(c, "GET %s?channel=stack-%d HTTP/1.1\r\nHost: x\r\n\r\n", path, i%7)
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
}
