package actors_test

import (
	"context"
	"errors"
	"fmt"
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

// heldReplay is a cluster history whose lookup waits for the test, so that
// events can reach the node while a stream's replay is in flight, the race
// the relay leaves open when it lags behind Redis. (redisrelay's tests run
// the same path against a real Redis; here the order is pinned.)
type heldReplay struct {
	release chan struct{}
	answer  actors.Replay
}

func (c *heldReplay) PublishChecked(context.Context, actors.Checked, string) (actors.Published, error) {
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

// pagedReplay is a cluster history that honours the paging contract of
// actors.ReplayRequest, as redisrelay's does against Redis.
type pagedReplay struct {
	mu       sync.Mutex
	events   []actors.ReplayEvent
	requests int
	served   int // bytes of event data handed out
}

func (c *pagedReplay) PublishChecked(context.Context, actors.Checked, string) (actors.Published, error) {
	return actors.Published{}, errors.New("pagedReplay: publish is not used")
}

func (c *pagedReplay) append(e actors.ReplayEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *pagedReplay) Replay(_ context.Context, req actors.ReplayRequest) (actors.Replay, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	r := actors.Replay{Status: actors.ReplayFound}
	start := -1
	for i, e := range c.events {
		if req.From.IsZero() && e.Event.ID == req.LastEventID {
			start, r.Point = i+1, e.Pos
		} else if !req.From.IsZero() && req.From.Less(e.Pos) {
			start = i
			break
		}
	}
	if start < 0 {
		if req.From.IsZero() {
			return actors.Replay{Status: actors.ReplayUnknown}, nil
		}
		start = len(c.events)
	}
	size := 0
	for _, e := range c.events[start:] {
		if len(r.Events) > 0 && (len(r.Events) >= req.MaxEvents || size+len(e.Event.Data) > req.MaxBytes) {
			r.More = true
			break
		}
		r.Events = append(r.Events, e)
		size += len(e.Event.Data)
	}
	c.served += size
	return r, nil
}

func (c *pagedReplay) stats() (requests, served int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests, c.served
}

// Class 4 of issue 14, cluster mode: a resuming stream that stalls reads no
// more than a few pages of its replay; once it reads, it gets all of the
// replay and the events delivered live meanwhile, in order, once each.
func TestHostileUnboundedReplayPaged(t *testing.T) {
	const (
		events = 1000
		size   = 1 << 10
		bound  = 64 << 10
	)
	cluster := &pagedReplay{}
	event := func(i int) actors.ReplayEvent {
		p := actors.Pos{Ms: 1000 + uint64(i)}
		return actors.ReplayEvent{Pos: p, Event: sse.Event{ID: p.String(), Data: []byte(fmt.Sprintf("%d/%s", i, strings.Repeat("x", size)))}}
	}
	for i := range events {
		cluster.append(event(i))
	}
	h := actorstest.NewHub(t, actors.Config{Cluster: cluster, Heartbeat: -1, MaxQueueBytes: bound})
	w := newGatedWriter()
	s, err := h.Open(w, actors.StreamOptions{Channels: []string{"c"}, LastEventID: event(0).Event.ID})
	require.NoError(t, err)
	<-w.entered // stalled in its first write

	// Events that reach the node during the replay, as the relay hands them
	// over after Redis appended them.
	for i := events; i < events+50; i++ {
		cluster.append(event(i))
		h.Deliver("c", event(i).Event, event(i).Pos)
	}
	// The condition keeps its own variable: assert.Never may return while
	// its last call still runs.
	assert.Never(t, func() bool { _, n := cluster.stats(); return n > 4*bound }, 200*time.Millisecond, 10*time.Millisecond,
		"a stalled stream reads on past %d bytes of replay", 4*bound)
	requests, served := cluster.stats()
	t.Logf("stalled: %d requests, %d KB of %d KB read", requests, served>>10, events*size>>10)

	close(w.open)
	want := make([]string, 0, events+49)
	for i := 1; i < events+50; i++ {
		want = append(want, fmt.Sprint(i))
	}
	var got []string
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, d := range w.events(t) {
			n, _, _ := strings.Cut(d, "/")
			got = append(got, n)
		}
		return len(got) >= len(want)
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, want, got, "the whole replay, then the live events, once each")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Wait(ctx)
}
