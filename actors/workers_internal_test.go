package actors

import (
	"runtime"
	"sync"
	"sync/atomic"
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
		p.run(turnFunc(func() { close(ran) }), func() { t.Error("a goroutine was started with workers idle") })
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

func run(p *workerPool, turn func()) { p.run(turnFunc(turn), func() { p.work(nil) }) }

// turnFunc is a turn that runs a function, for tests of the pool alone.
type turnFunc func()

func (f turnFunc) runTurn() { f() }

// A burst of turns that outruns the idle workers, as a broadcast's wake-ups
// do, queues in the backlog and runs on a few goroutines, not one per turn.
func TestWorkerPoolQueuesABurst(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newWorkerPool()
	const turns = 10000
	var spawned atomic.Int32
	var done sync.WaitGroup
	done.Add(turns)
	// The burst is sent from a turn, as a channel actor's fan-out is: the
	// workers it wakes compete with it for the processors.
	run(p, func() {
		for range turns {
			p.run(turnFunc(done.Done), func() { spawned.Add(1); p.work(nil) })
		}
	})
	waitGroup(t, &done)
	t.Logf("%d turns, %d goroutines started", turns, spawned.Load())
	require.Less(t, int(spawned.Load()), turns/10, "goroutines started for the burst")
	p.stop()
	goroutinesAtMost(t, before)
}

// A backlog that no worker takes from, as when every worker is stuck in a
// write to a stalled client, is handed out by its watch: each turn gets a
// goroutine of its own.
func TestWorkerPoolHandsOutAStalledBacklog(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newWorkerPool()
	var ran sync.WaitGroup
	ran.Add(3)
	for range 3 {
		// The spawn starts no worker: nothing but the watch can run these.
		p.run(turnFunc(ran.Done), func() {})
	}
	waitGroup(t, &ran)
	p.stop()
	goroutinesAtMost(t, before)
}
