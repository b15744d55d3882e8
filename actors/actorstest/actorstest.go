// Package actorstest provides helpers for tests of code built on package
// actors: a hub whose cleanup checks that every actor it started is gone,
// and an observer that ignores everything, to embed.
package actorstest

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
)

// LiveActors counts the processes registered in sys: every live actor,
// idle or not, which goleak cannot see because an idle actor holds no
// goroutine.
func LiveActors(sys *actor.ActorSystem) int {
	n := 0
	for _, m := range sys.ProcessRegistry.LocalPIDs.LocalPIDs {
		n += m.Count()
	}
	return n
}

// NewHub starts a hub with cfg in a fresh actor system. At cleanup it shuts
// the hub down and fails t unless every actor the hub started has stopped.
func NewHub(t testing.TB, cfg actors.Config) *actors.Hub {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	cfg.System = sys
	// A dead letter that is not marked ignorable starts protoactor's
	// throttle goroutine, which goleak reports a second later, far from
	// its cause: report it here, with the message that caused it.
	sub := sys.EventStream.Subscribe(func(msg any) {
		if dl, ok := msg.(*actor.DeadLetterEvent); ok {
			if _, ignorable := dl.Message.(actor.IgnoreDeadLetterLogging); !ignorable {
				t.Errorf("actorstest: dead letter %T %+v to %v", dl.Message, dl.Message, dl.PID)
			}
		}
	})
	h := actors.New(cfg)
	// Everything registered now but the hub's own tree (its top actor, the
	// streams supervisor and the router) outlives the hub: the system's own
	// processes and the guardian that supervises the top actor.
	base := LiveActors(sys) - 3
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, h.Shutdown(ctx), "Hub.Shutdown")
		require.Eventually(t, func() bool { return LiveActors(sys) == base },
			5*time.Second, 5*time.Millisecond, "actors left alive after Shutdown: %d, want %d", LiveActors(sys), base)
		sys.EventStream.Unsubscribe(sub)
		sys.Shutdown()
	})
	return h
}

// RequireNoStreams waits until h has no open stream and no channel actor.
func RequireNoStreams(t testing.TB, h *actors.Hub) {
	t.Helper()
	require.Eventually(t, func() bool { return h.OpenStreams() == 0 && h.Channels() == 0 },
		5*time.Second, 5*time.Millisecond, "streams or channels left: %d streams, %d channels", h.OpenStreams(), h.Channels())
}

// BusyGoroutines is runtime.NumGoroutine without the goroutines that hubs
// keep waiting for work between actor turns: a bounded number per hub,
// not per stream or channel, so a test that counts goroutines to find a
// leak must not count them.
func BusyGoroutines() int {
	return countGoroutines(func(g string) bool { return !idleWorker(g) })
}

// AwaitingPublishes counts the goroutines waiting for a channel actor to
// answer a publish already in its mailbox: a test that must know a
// publish is queued (behind a turn it holds) waits for this to rise.
func AwaitingPublishes() int {
	return countGoroutines(func(g string) bool { return strings.Contains(g, "actors.(*Hub).await(") })
}

// BlockedWrites counts the connection actors blocked in a write to their
// client, waiting for the socket to take more: what a test that stalls
// clients waits for before it checks that nobody else is held up.
func BlockedWrites() int {
	return countGoroutines(func(g string) bool {
		return strings.Contains(g, "[IO wait") && strings.Contains(g, "actors.(*connActor).flush(")
	})
}

// countGoroutines counts the goroutines whose stack dump matches.
func countGoroutines(match func(dump string) bool) int {
	n := 0
	for _, g := range goroutineDumps() {
		if match(g) {
			n++
		}
	}
	return n
}

// goroutineDumps is the stack dump of every goroutine, one per element.
func goroutineDumps() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Split(string(buf), "\n\n")
}

// idleWorker reports whether the goroutine dump g is of a hub's worker
// waiting for a turn: blocked in a receive whose first frame outside the
// runtime is the pool's loop.
func idleWorker(g string) bool {
	lines := strings.Split(g, "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "[chan receive") {
		return false
	}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "runtime.") {
			continue
		}
		return strings.HasPrefix(l, "github.com/squall-sse/squall/actors.(*workerPool).work(")
	}
	return false
}
