package redisrelay_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// A storm of resumes (every client of a restarted hub coming back with
// Last-Event-ID) must not fail on the pool's short wait, nor starve the
// publishes that share the pool: replays take their turn on their own
// deadline and leave half the pool to publishes.
func TestReplayStormKeepsPublishesGoing(t *testing.T) {
	r := newRelay(t, redisrelay.Config{URL: sharedRedis + "?pool_size=4&pool_timeout=50ms", History: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	big := []byte(strings.Repeat("x", 16<<10))
	first, err := r.Publish(ctx, "storm", sse.Event{Data: big})
	require.NoError(t, err)
	for range 200 {
		_, err := r.Publish(ctx, "storm", sse.Event{Data: big})
		require.NoError(t, err)
	}

	const replays = 200
	var wg sync.WaitGroup
	replayErrs := make(chan error, replays)
	for range replays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := r.Replay(ctx, actors.ReplayRequest{Channel: "storm", LastEventID: first, MaxBytes: 1 << 20})
			if err == nil && len(p.Events) == 0 {
				err = assert.AnError
			}
			replayErrs <- err
		}()
	}
	stormDone := make(chan struct{})
	go func() { wg.Wait(); close(stormDone) }()
	published, refused := 0, 0
	for storming := true; storming; {
		select {
		case <-stormDone:
			storming = false
		default:
			if _, err := r.Publish(ctx, "other", sse.Event{Data: []byte("live")}); err != nil {
				refused++
			} else {
				published++
			}
		}
	}
	close(replayErrs)
	failed := 0
	for err := range replayErrs {
		if err != nil {
			failed++
		}
	}
	t.Logf("%d replays, %d failed; %d publishes during the storm, %d refused", replays, failed, published, refused)
	assert.Zero(t, failed, "replays waited for their turn")
	assert.Zero(t, refused, "publishes kept their share of the pool")
	assert.Positive(t, published)
}
