package redisrelay_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// failFast is the bound the relay promises for a publish while Redis is
// away: a contract (the client gets a 503 instead of a hang), not a speed.
const failFast = 2 * time.Second

func requireDown(t *testing.T, n *node) {
	t.Helper()
	// With publishes in flight, a failing publish can turn readiness down
	// before the subscriber notices its connection is gone: wait for both.
	require.Eventually(t, func() bool { return errors.Is(n.relay.Ready(), redisrelay.ErrNotSubscribed) },
		wait, 5*time.Millisecond, "relay still reports its subscription up")
	assert.Equal(t, http.StatusServiceUnavailable, n.status(t, "/readyz"))
}

func requirePublishFailsFast(t *testing.T, n *node) {
	t.Helper()
	start := time.Now()
	_, err := n.relay.Publish(context.Background(), "a", evData("lost?"))
	assert.Error(t, err, "a publish while Redis is away is refused")
	assert.Less(t, time.Since(start), failFast, "and refused fast")
	code, out := n.publish(t, "a", "lost?")
	assert.Equal(t, http.StatusServiceUnavailable, code, "POST /publish: %v", out)
}

func TestRedisRestart(t *testing.T) {
	srv := startRedis(t)
	rc := redisrelay.Config{URL: srv.url(), Prefix: "sse", PingInterval: 100 * time.Millisecond}
	a := newNode(t, rc, actors.Config{})
	b := newNode(t, rc, actors.Config{})
	a.requireReady(t)
	b.requireReady(t)
	assert.Equal(t, http.StatusOK, a.status(t, "/readyz"))
	ca := a.subscribe(t, "channel=a", "")
	cb := b.subscribe(t, "channel=a", "")
	a.requireChannels(t, 1)
	b.requireChannels(t, 1)
	a.mustPublish(t, "a", "before")
	ca.RequireNext(t, "before")
	cb.RequireNext(t, "before")

	srv.kill()
	requireDown(t, a)
	requireDown(t, b)
	requirePublishFailsFast(t, a)

	srv.start()
	a.requireReady(t)
	b.requireReady(t)
	assert.Equal(t, http.StatusOK, a.status(t, "/readyz"))
	b.mustPublish(t, "a", "after")
	ca.RequireNext(t, "after")
	cb.RequireNext(t, "after")
	select {
	case <-ca.Done:
		t.Fatal("the stream on A ended during the outage")
	case <-cb.Done:
		t.Fatal("the stream on B ended during the outage")
	default:
	}
	assert.Empty(t, ca.Events, "nothing was accepted during the outage")
}

// A hung Redis (SIGSTOP) sends no error: the relay notices missing pongs,
// and publishes time out instead of hanging.
func TestRedisHung(t *testing.T) {
	srv := startRedis(t)
	a := newNode(t, redisrelay.Config{URL: srv.url(), PingInterval: 100 * time.Millisecond}, actors.Config{})
	a.requireReady(t)
	c := a.subscribe(t, "channel=a", "")
	a.requireChannels(t, 1)
	// The relay catches up from the last event it relayed on a channel.
	a.mustPublish(t, "a", "before")
	c.RequireNext(t, "before")

	srv.signal(syscall.SIGSTOP)
	requireDown(t, a)
	// The script reached the hung Redis, which runs it once it resumes:
	// the answer is "outcome unknown" (504), never "not taken" (503).
	start := time.Now()
	_, err := a.relay.Publish(context.Background(), "a", evData("maybe"))
	assert.ErrorIs(t, err, actors.ErrOutcomeUnknown, "a publish to a hung Redis")
	assert.Less(t, time.Since(start), failFast, "and answered fast")

	srv.signal(syscall.SIGCONT)
	// "maybe" was published while the subscription was down: it comes from
	// the catch-up after the resubscribe, whose backoff alone may reach 2 s,
	// and the whole suite loads this machine.
	require.Equal(t, "maybe", string(c.NextWithin(t, 15*time.Second).Data))
	a.requireReady(t)
	a.mustPublish(t, "a", "after")
	c.RequireNext(t, "after")
}

// When one node's subscription is lost while Redis stays up, the events
// published meanwhile reach that node's streams once it resubscribes: the
// relay fetches them from the history, in order, without duplicates.
func TestEventsMissedWhileUnsubscribedAreCaughtUp(t *testing.T) {
	srv := startRedis(t)
	// B cannot connect while gated, as if the network between it and
	// Redis were down.
	var gated atomic.Bool
	opt, err := redis.ParseURL(srv.url())
	require.NoError(t, err)
	opt.OnConnect = func(context.Context, *redis.Conn) error {
		if gated.Load() {
			return errors.New("test: B cut off from Redis")
		}
		return nil
	}
	a := newNode(t, redisrelay.Config{URL: srv.url()}, actors.Config{})
	b := newNode(t, redisrelay.Config{Options: opt}, actors.Config{})
	a.requireReady(t)
	b.requireReady(t)
	cb := b.subscribe(t, "channel=a&channel=b", "")
	b.requireChannels(t, 2)
	// Catch-up starts from the last event B relayed on each channel, so
	// both channels have one before the outage.
	for i := range 5 {
		a.mustPublish(t, []string{"a", "b"}[i%2], strconv.Itoa(i))
	}
	assert.ElementsMatch(t, upTo(0, 5), seqs(t, cb.NextN(t, 5)))

	gated.Store(true)
	rdb := rawClient(t, srv.url())
	require.NoError(t, rdb.ClientKillByFilter(t.Context(), "TYPE", "pubsub").Err())
	requireDown(t, b)
	a.requireReady(t)
	// More missed events per channel than one catch-up read takes (100),
	// so the catch-up reads on page by page.
	const missedUntil, liveUntil = 255, 260
	for i := 5; i < missedUntil; i++ {
		a.mustPublish(t, []string{"a", "b"}[i%2], strconv.Itoa(i))
	}
	gated.Store(false)
	b.requireReady(t)
	for i := missedUntil; i < liveUntil; i++ {
		a.mustPublish(t, []string{"a", "b"}[i%2], strconv.Itoa(i))
	}
	got := seqs(t, cb.NextN(t, liveUntil-5))
	var evens, odds, wantEvens, wantOdds []int
	for _, n := range got {
		if n%2 == 0 {
			evens = append(evens, n)
		} else {
			odds = append(odds, n)
		}
	}
	for i := 5; i < liveUntil; i++ {
		if i%2 == 0 {
			wantEvens = append(wantEvens, i)
		} else {
			wantOdds = append(wantOdds, i)
		}
	}
	assert.Equal(t, wantEvens, evens, "channel a: the missed events, then live, in order")
	assert.Equal(t, wantOdds, odds, "channel b: the same")
	a.mustPublish(t, "a", "end")
	cb.RequireNext(t, "end")
}

// blockedSink is a hub that does not take anything until released: the
// relay must keep reading from Redis meanwhile.
type blockedSink struct {
	release chan struct{}
	mu      sync.Mutex
	got     []string
}

func (s *blockedSink) Deliver(_ string, ev sse.Event, _ actors.Pos) {
	<-s.release
	s.mu.Lock()
	s.got = append(s.got, string(ev.Data))
	s.mu.Unlock()
}

func (s *blockedSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// With the pub/sub output buffer limited to 1 MB, a relay that stopped
// reading during this 3 MB burst would be cut by Redis and lose messages.
func TestBurstWhileTheHubIsSlow(t *testing.T) {
	srv := startRedis(t, "--client-output-buffer-limit", "pubsub 1mb 512kb 5")
	relay, err := redisrelay.New(redisrelay.Config{URL: srv.url()})
	require.NoError(t, err)
	sink := &blockedSink{release: make(chan struct{})}
	relay.Start(nil, sink)
	released := false
	t.Cleanup(func() {
		if !released {
			close(sink.release)
		}
		require.NoError(t, relay.Close())
	})
	relay.Join("burst")
	require.Eventually(t, func() bool { return relay.Ready() == nil && relay.Listening("burst") }, wait, 5*time.Millisecond)

	const total, batch = 50000, 1000
	rdb := rawClient(t, srv.url())
	ch := relay.PubSubChannel("burst")
	for i := 0; i < total; i += batch {
		_, err := rdb.Pipelined(t.Context(), func(p redis.Pipeliner) error {
			for k := i; k < i+batch; k++ {
				p.Publish(t.Context(), ch, fmt.Sprintf(`{"data":"%d","event":"tick","id":null,"retry":null}`, k))
			}
			return nil
		})
		require.NoError(t, err)
	}
	require.NoError(t, relay.Ready(), "the subscription survived the burst")
	close(sink.release)
	released = true
	require.Eventually(t, func() bool { return sink.count() == total }, 20*time.Second, 10*time.Millisecond,
		"delivered %d of %d", sink.count(), total)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for i, d := range sink.got {
		require.Equal(t, strconv.Itoa(i), d, "delivered in order")
	}
	assert.Zero(t, relay.Malformed())
}

// TestRedisKilledMidStream kills Redis while a publisher keeps publishing
// through both hubs and a client on each reads: no crash, the streams stay
// open, every event a client gets was accepted, none twice and in order,
// and every event accepted once both hubs are back reaches both clients.
func TestRedisKilledMidStream(t *testing.T) {
	srv := startRedis(t)
	rc := redisrelay.Config{URL: srv.url(), Prefix: "sse", PingInterval: 100 * time.Millisecond}
	a := newNode(t, rc, actors.Config{})
	b := newNode(t, rc, actors.Config{})
	a.requireReady(t)
	b.requireReady(t)
	ca := a.subscribe(t, "channel=live", "")
	cb := b.subscribe(t, "channel=live", "")
	a.requireChannels(t, 1)
	b.requireChannels(t, 1)

	// The publisher numbers its events and alternates hubs; accepted[i]
	// records which ones a hub took.
	const total = 3000
	var accepted [total]atomic.Bool
	var published atomic.Int64
	phase := make(chan struct{}) // closed when the test wants the publisher to wait for recovery
	resumed := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			if i == total/3 {
				<-phase // Redis is killed here, with events in flight on both hubs
			}
			if i == 2*total/3 {
				<-resumed
			}
			hub := []*node{a, b}[i%2].hub
			ctx, cancel := context.WithTimeout(context.Background(), failFast)
			if _, err := hub.Publish(ctx, "live", evData(strconv.Itoa(i))); err == nil {
				accepted[i].Store(true)
			}
			cancel()
			published.Add(1)
		}
	}()

	require.Eventually(t, func() bool { return published.Load() >= total/3 }, wait, time.Millisecond)
	srv.kill()
	close(phase)
	requireDown(t, a)
	requireDown(t, b)
	srv.start()
	a.requireReady(t)
	b.requireReady(t)
	close(resumed)
	<-done

	var afterRecovery []int
	for i := 2 * total / 3; i < total; i++ {
		require.True(t, accepted[i].Load(), "event %d published after recovery was refused", i)
		afterRecovery = append(afterRecovery, i)
	}
	for name, c := range map[string]*client{"A": ca, "B": cb} {
		var got []int
		for len(got) == 0 || got[len(got)-1] != total-1 {
			n, err := strconv.Atoi(string(c.Next(t).Data))
			require.NoError(t, err)
			got = append(got, n)
		}
		for k, n := range got {
			require.True(t, accepted[n].Load(), "client on %s got %d, which no hub accepted", name, n)
			if k > 0 {
				require.Less(t, got[k-1], n, "client on %s: %d after %d (duplicate or out of order)", name, n, got[k-1])
			}
		}
		require.Subset(t, got, afterRecovery, "client on %s missed events accepted after recovery", name)
		t.Logf("client on %s: %d events received of %d accepted", name, len(got), countTrue(accepted[:]))
	}
	select {
	case <-ca.Done:
		t.Fatal("the stream on A ended")
	case <-cb.Done:
		t.Fatal("the stream on B ended")
	default:
	}
}

func countTrue(bs []atomic.Bool) int {
	n := 0
	for i := range bs {
		if bs[i].Load() {
			n++
		}
	}
	return n
}
