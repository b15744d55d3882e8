//go:build !race

// The race detector enlarges every frame, so stack sizes only mean
// something without it; `make test` runs this file separately.

package httpedge_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// An idle stream holds two goroutines: its handler, waiting for the stream
// to end, and net/http's background read. Opening a stream goes deeper than
// net/http alone does, and a stack never shrinks back below the depth its
// waiting frames need, so opening on the handler's own stack would leave
// 8 KB on every idle stream instead of 4 KB.
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
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	addr := strings.TrimPrefix(s.srv.URL, "http://")
	// Warm up: the first connections grow pools and tables the measure
	// should not count.
	openRaw(t, addr, 50)
	require.Eventually(t, func() bool { return s.hub.OpenStreams() == 50 }, wait, time.Millisecond)

	before := stackInuse()
	const n = 400
	openRaw(t, addr, n)
	require.Eventually(t, func() bool { return s.hub.OpenStreams() == 50+n }, wait, time.Millisecond)
	perStream := float64(stackInuse()-before) / n / 1024

	t.Logf("stack per idle stream: %.2f KB", perStream)
	// 4 KB for the handler, 2 KB for the background read; 10 KB when the
	// handler's stack keeps the depth of the opening.
	require.Less(t, perStream, 7.0, "stack per idle stream (KB)")
}

func stackInuse() uint64 {
	var m runtime.MemStats
	// Stacks shrink during a GC; the second one sees them settled.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// openRaw opens n streams over plain TCP, closed at the end of the test; a
// reader goroutine per stream would add its own stack to the measure.
func openRaw(t *testing.T, addr string, n int) {
	t.Helper()
	for i := range n {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = fmt.Fprintf(c, "GET /events?channel=stack-%d HTTP/1.1\r\nHost: x\r\n\r\n", i%7)
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
}
