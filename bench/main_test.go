package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/squall-sse/squall/bench/internal/loadgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// alive reports whether pid runs; a zombie waiting for init to reap it
// does not count.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// TestStopEndsTheProcessGroup checks the cleanup promise: stopping a child
// also ends what it started, even when it ignores SIGTERM.
func TestStopEndsTheProcessGroup(t *testing.T) {
	tests := []struct {
		name, script string
	}{
		{"obeys SIGTERM", `sleep 60 & echo $!; wait`},
		{"ignores SIGTERM", `trap "" TERM; sleep 60 & echo $!; wait`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newChildren(t.TempDir(), false)
			out := &syncWriter{}
			c, err := cs.start("sh", "/bin/sh", []string{"-c", tt.script}, out)
			require.NoError(t, err, "start")
			var grandchild atomic.Int64
			require.Eventually(t, func() bool {
				n, err := strconv.Atoi(strings.TrimSpace(out.String()))
				grandchild.Store(int64(n))
				return err == nil
			}, 5*time.Second, 10*time.Millisecond, "grandchild pid printed")
			gc := int(grandchild.Load())
			require.True(t, alive(gc), "grandchild running")
			cs.stop(c, 200*time.Millisecond)
			assert.True(t, c.exited(), "child exited")
			assert.Eventually(t, func() bool { return !alive(gc) }, 5*time.Second, 10*time.Millisecond, "grandchild ended")
			cs.mu.Lock()
			assert.Empty(t, cs.set, "no child tracked")
			cs.mu.Unlock()
		})
	}
}

// syncWriter lets the test read what the child's copier goroutine writes.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestStartServerReportsEarlyExit(t *testing.T) {
	cs := newChildren(t.TempDir(), false)
	defer cs.stopAll()
	_, _, err := cs.startServer(t.Context(), "false", "/bin/false", nil, false)
	require.Error(t, err, "a server that exits at once")
	assert.Contains(t, err.Error(), "exited at start")
}

func TestRatioAndFormat(t *testing.T) {
	m := func(v float64) loadgen.Metric { return loadgen.Metric{Value: v} }
	missing := loadgen.Metric{Missing: true}
	tests := []struct {
		name string
		a, b loadgen.Metric
		want string
	}{
		{"plain", m(3), m(2), "1.50"},
		{"both zero", m(0), m(0), "="},
		{"baseline zero", m(1), m(0), "-"},
		{"missing", missing, m(2), "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ratio(tt.a, tt.b))
		})
	}
	assert.Equal(t, "180103", fmtValue(m(180103.4)))
	assert.Equal(t, "28.3", fmtValue(m(28.31)))
	assert.Equal(t, "0.25", fmtValue(m(0.25)))
	assert.Equal(t, "2", fmtValue(m(2)))
	assert.Equal(t, "n/a", fmtValue(missing))
}

func TestLoadgenArgs(t *testing.T) {
	args := strings.Join(fullMode.loadgenArgs("slow-consumer"), " ")
	assert.Contains(t, args, "-conns 1000 ", "slow-consumer uses its own N")
	assert.Contains(t, args, "-stalled 1")
	assert.Contains(t, args, "-stall-duration 15s")
	args = strings.Join(fullMode.loadgenArgs("fanout"), " ")
	assert.Contains(t, args, "-conns 10000 ")
	assert.Contains(t, args, "-rates 100,1000")
	for _, m := range []mode{quickMode, fullMode} {
		assert.Contains(t, strings.Join(m.loadgenArgs("many-channels"), " "), "-batch 16", "%s: many-channels measures batches too", m.name)
	}
	q := quickMode
	q.conns = 50
	assert.Contains(t, strings.Join(q.loadgenArgs("slow-consumer"), " "), "-conns 50 ", "never more than -conns")
}

func TestCPUModelAndLoad(t *testing.T) {
	if _, err := os.Stat("/proc/cpuinfo"); err != nil {
		t.Skip("no /proc")
	}
	assert.NotEqual(t, "unknown", cpuModel())
	assert.NotEqual(t, "unknown", loadAvg())
}

func TestCombineRounds(t *testing.T) {
	res := func(flat, lat float64, errs ...string) outcome {
		return outcome{res: &loadgen.Result{
			Scenario: "fanout",
			Metrics: []loadgen.Metric{
				{Name: "deliveries/s", Value: flat, Better: loadgen.Higher},
				{Name: "p99", Value: lat, Better: loadgen.Lower},
			},
			Errors: errs,
		}}
	}
	sq := combine([]outcome{res(100, 9), res(300, 1), res(200, 5, "lost 1")})
	ba := combine([]outcome{res(200, 3), res(150, 2), res(100, 4)})

	got, _ := sq.res.Get("deliveries/s")
	assert.Equal(t, 200.0, got.Value, "median of 100, 300, 200")
	got, _ = sq.res.Get("p99")
	assert.Equal(t, 5.0, got.Value, "median of 9, 1, 5")
	assert.Equal(t, []string{"round 3: lost 1"}, sq.res.Errors, "errors keep their round")

	rs := pairedRatios(sq, ba, "deliveries/s")
	assert.InDeltaSlice(t, []float64{0.5, 2, 2}, rs, 1e-9, "each round against its own baseline")
	assert.Equal(t, 2.0, median(rs))
	assert.Nil(t, pairedRatios(sq, combine([]outcome{res(1, 1)}), "deliveries/s"), "no pairs with a single round")

	broken := combine([]outcome{res(1, 1), {err: assert.AnError}})
	assert.ErrorIs(t, broken.err, assert.AnError, "a broken round breaks the scenario")
	assert.Equal(t, 4.5, median([]float64{6, 3, 9, 1}))
}

func TestRoundOrderAlternates(t *testing.T) {
	syss := []system{{name: "squall"}, {name: "baseline"}}
	assert.Equal(t, "squall", roundOrder(syss, 0)[0].name)
	assert.Equal(t, "baseline", roundOrder(syss, 1)[0].name)
	assert.Equal(t, "squall", roundOrder(syss, 2)[0].name)
	assert.Equal(t, "squall", syss[0].name, "the caller's order is left alone")
}
