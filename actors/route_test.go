package actors_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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
