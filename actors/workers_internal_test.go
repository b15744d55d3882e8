package actors

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A turn that never ends (a connection actor in a write to a client that
// stopped reading) holds its own goroutine and nobody else's turn.
func TestWorkerPoolNeverWaitsForATurn(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newWorkerPool()
	stuck := make(chan struct{})
	defer func() {
		close(stuck)
		p.stop()
		goroutinesAtMost(t, before)
	}()
	for range maxIdleWorkers + 1 {
		run(p, func() { <-stuck })
	}
	var done sync.WaitGroup
	done.Add(1000)
	for range 1000 {
		run(p, done.Done)
	}
	waitGroup(t, &done)
}

// However many turns ran at once, at most maxIdleWorkers goroutines stay
// waiting for the next, and stop ends them.
func TestWorkerPoolKeepsABoundedNumberIdle(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newWorkerPool()
	const turns = 4 * maxIdleWorkers
	release := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(turns)
	done.Add(turns)
	for range turns {
		run(p, func() {
			started.Done()
			<-release
			done.Done()
		})
	}
	waitGroup(t, &started)
	close(release)
	waitGroup(t, &done)
	goroutinesAtMost(t, before+maxIdleWorkers)
	require.Eventually(t, func() bool { return p.idle.Load() == maxIdleWorkers }, 5*time.Second, time.Millisecond)

	// An idle worker takes the next turns: no new goroutine.
	for range 100 {
		ran := make(chan struct{})
		p.run(func() { close(ran) }, func() { t.Error("a goroutine was started with workers idle") })
		<-ran
	}

	p.stop()
	goroutinesAtMost(t, before)
	// A turn after stop still runs, on a goroutine of its own.
	ran := make(chan struct{})
	run(p, func() { close(ran) })
	<-ran
}

func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("turns did not run")
	}
}

// goroutinesAtMost polls, on the test's goroutine (require.Eventually
// would count its own), until there are at most n goroutines.
func goroutinesAtMost(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d, want %d", runtime.NumGoroutine(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func run(p *workerPool, turn func()) { p.run(turn, func() { p.work(turn) }) }
