package actors_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/sse"
)

// Publishes and joins go straight to a channel actor the router has
// published (Hub.routeTo). A channel without subscribers or history stops
// after every publish, so here the router keeps stopping the channel that
// publishers keep sending to: no publish may be lost to a stopped actor
// (each must be answered), and a stream that joins meanwhile must hear a
// publish made after it opened.
func TestDirectRoutingLosesNothingWhileChannelsStop(t *testing.T) {
	// Unbounded queues: the noise must not close the stream as a slow
	// consumer.
	h := actorstest.NewHub(t, actors.Config{History: -1, Heartbeat: -1, FlushGap: -1, MaxQueueFrames: -1, MaxQueueBytes: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A lost publish would wait for ctx: the test's timeout.
				if _, err := h.Publish(ctx, "flap", sse.Event{Data: []byte("noise")}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 50 {
		w := &timedWriter{header: http.Header{}}
		s, err := h.Open(w, actors.StreamOptions{Channels: []string{"flap"}})
		require.NoError(t, err)
		marker := fmt.Sprintf("marker-%d", i)
		_, err = h.Publish(ctx, "flap", sse.Event{Data: []byte(marker)})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			for _, wr := range w.snapshot() {
				if strings.Contains(wr.data, marker) {
					return true
				}
			}
			return false
		}, 5*time.Second, time.Millisecond, "the stream hears %s, published after it opened", marker)
		gone, cancelGone := context.WithCancel(context.Background())
		cancelGone()
		s.Wait(gone)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "a publish was lost")
	}
}

// Publishers that find the channel actor idle run its turn on their own
// goroutine (mailbox.postAndRun); many at once on one channel must still
// be handled one at a time, in one order that every subscriber sees, each
// publisher's events in the order it published them, none lost or doubled.
func TestConcurrentPublishersShareOneOrder(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{History: 16, Heartbeat: -1, MaxQueueFrames: -1, MaxQueueBytes: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const publishers, each = 8, 200
	var writers []*timedWriter
	for range 2 {
		w := &timedWriter{header: http.Header{}}
		_, err := h.Open(w, actors.StreamOptions{Channels: []string{"hot"}})
		require.NoError(t, err)
		writers = append(writers, w)
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				_, err := h.Publish(ctx, "hot", sse.Event{Data: fmt.Appendf(nil, "%d-%d", p, i)})
				if !assert.NoError(t, err) {
					return
				}
			}
		})
	}
	wg.Wait()
	seen := func(w *timedWriter) []string {
		var all []string
		for _, wr := range w.snapshot() {
			all = append(all, wr.datas()...)
		}
		return all
	}
	for _, w := range writers {
		require.Eventually(t, func() bool { return len(seen(w)) >= publishers*each }, 10*time.Second, time.Millisecond)
	}
	order := seen(writers[0])
	require.Equal(t, order, seen(writers[1]), "both subscribers see one order")
	next := make([]int, publishers)
	for _, d := range order {
		var p, i int
		_, err := fmt.Sscanf(d, "%d-%d", &p, &i)
		require.NoError(t, err)
		require.Equal(t, next[p], i, "publisher %d's events in its order, once each", p)
		next[p]++
	}
}

// A publish refused because the hub is closing is not counted as sent to
// its channel: a count the channel never reaches would keep the channel
// from ever stopping for idleness.
func TestPublishToAClosingHubIsNotCounted(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{})
	ctx := context.Background()
	_, err := h.Publish(ctx, "a", sse.Event{Data: []byte("before")})
	require.NoError(t, err)
	// The router publishes a channel it spawned for direct senders after
	// forwarding the message that spawned it, possibly after the answer.
	require.Eventually(t, func() bool { return actors.SentTo(h, "a") != 0 }, 5*time.Second, time.Millisecond)
	sent := actors.SentTo(h, "a")
	require.NoError(t, h.Drain(ctx, 0))
	_, err = h.Publish(ctx, "a", sse.Event{Data: []byte("after")})
	require.ErrorIs(t, err, actors.ErrClosed)
	assert.Equal(t, sent, actors.SentTo(h, "a"))
}
