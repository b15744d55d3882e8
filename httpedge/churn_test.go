package httpedge_test

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
)

var churnCycles = flag.Int("squall.churn", 10000, "connect/disconnect cycles of TestChurnLeavesNothingBehind")

// TestChurnLeavesNothingBehind opens and drops streams many times, one in
// ten of them by a client that stops reading and never closes, and checks
// that streams, channel actors and goroutines come back to zero and that the
// heap does not grow with the number of cycles (the hub's idle workers are
// not counted: they are bounded, whatever the churn): it is measured after a first
// half (which fills one-time pools and tables, such as protoactor's process
// registry shards) and again after the second.
func TestChurnLeavesNothingBehind(t *testing.T) {
	s := newHubServer(t, actors.Config{MaxQueueBytes: 32 << 10, History: -1}, httpedge.Config{}, smallSendBuffers)
	half := *churnCycles / 2
	baseG, _ := settle()
	churn(t, s, 0, half)
	_, heap1 := settle()
	churn(t, s, half, 2*half)
	g, heap2 := settle()
	if p := os.Getenv("SQUALL_CHURN_HEAPPROFILE"); p != "" {
		f, err := os.Create(p)
		require.NoError(t, err)
		require.NoError(t, pprof.WriteHeapProfile(f))
		f.Close()
	}
	t.Logf("%d cycles: goroutines %d → %d; heap in use after %d cycles %d KB, after %d: %d KB",
		2*half, baseG, g, half, heap1>>10, 2*half, heap2>>10)
	assert.LessOrEqual(t, g, baseG, "goroutines back to baseline")
	assert.Less(t, heap2, heap1+4<<20, "heap grows with churn")
}

// churn runs cycles [from, to) over 16 workers, then makes the hub reap the
// stalled clients and requires everything closed.
func churn(t *testing.T, s *hubServer, from, to int) {
	addr := s.srv.Listener.Addr().String()
	const workers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	var stalled []net.Conn
	for w := range workers {
		wg.Go(func() {
			for i := from + w; i < to; i += workers {
				ch := fmt.Sprintf("churn-%d", i%50)
				if i%10 == 0 {
					c := dialStalled(t, addr, "/events?channel="+ch)
					mu.Lock()
					stalled = append(stalled, c)
					mu.Unlock()
					continue
				}
				resp, err := http.Get(s.srv.URL + "/events?channel=" + ch)
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	// The stalled clients never read: data published to them fills their
	// sockets and their bound, and the hub closes them as slow consumers.
	payload := strings.Repeat("x", 4096)
	require.Eventually(t, func() bool {
		for i := range 50 {
			s.mustPublish(t, fmt.Sprintf("churn-%d", i), payload)
		}
		return s.hub.OpenStreams() == 0
	}, 60*time.Second, time.Millisecond, "streams left open: %d", s.hub.OpenStreams())
	actorstest.RequireNoStreams(t, s.hub)
	for _, c := range stalled {
		c.Close()
	}
	http.DefaultClient.CloseIdleConnections()
}

// settle waits for goroutines to stop changing and returns their count and
// the heap in use after a GC.
func settle() (goroutines int, heap uint64) {
	prev := -1
	for range 100 {
		runtime.GC()
		n := actorstest.BusyGoroutines()
		if n == prev {
			break
		}
		prev = n
		time.Sleep(20 * time.Millisecond)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return prev, m.HeapInuse
}
