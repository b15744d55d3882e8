package actors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge/sse"
)

// heldReplay is a cluster history whose lookup waits for the test, so that
// events can reach the node while a stream's replay is in flight, the race
// the relay leaves open when it lags behind Redis. (redisrelay's tests run
// the same path against a real Redis; here the order is pinned.)
type heldReplay struct {
	release chan struct{}
	answer  actors.Replay
}

func (c *heldReplay) PublishOnce(context.Context, string, sse.Event, string) (actors.Published, error) {
	return actors.Published{}, errors.New("heldReplay: publish is not used")
}

func (c *heldReplay) Replay(ctx context.Context, _ actors.ReplayRequest) (actors.Replay, error) {
	select {
	case <-c.release:
		return c.answer, nil
	case <-ctx.Done():
		return actors.Replay{}, ctx.Err()
	}
}

// A stream that resumes from the newest event must not get that event, or
// an older one, when they reach its node only after it connected: an empty
// replay still says where the client is.
func TestEventsAtOrBeforeTheResumePointAreNotSentAgain(t *testing.T) {
	p8, p9, p10 := actors.Pos{Ms: 1000}, actors.Pos{Ms: 1000, Seq: 1}, actors.Pos{Ms: 1001}
	cluster := &heldReplay{
		release: make(chan struct{}),
		answer:  actors.Replay{Status: actors.ReplayFound, Point: p9, Events: []actors.ReplayEvent{}},
	}
	h := actorstest.NewHub(t, actors.Config{Cluster: cluster, Heartbeat: -1})
	w := openTimed(t, h, actors.StreamOptions{Channels: []string{"c"}, LastEventID: p9.String()})

	// 8 and 9 reach this node late: while the replay is in flight, or just
	// after it, depending on how the router and the lookup interleave.
	h.Deliver("c", sse.Event{Data: []byte("8"), ID: p8.String()}, p8)
	h.Deliver("c", sse.Event{Data: []byte("9"), ID: p9.String()}, p9)
	close(cluster.release)
	h.Deliver("c", sse.Event{Data: []byte("10"), ID: p10.String()}, p10)

	var got []string
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, wr := range w.snapshot() {
			got = append(got, wr.datas()...)
		}
		return len(got) > 0 && got[len(got)-1] == "10"
	}, 5*time.Second, time.Millisecond)
	assert.Equal(t, []string{"10"}, got, "only what follows the resume point")
}
