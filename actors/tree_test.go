package actors_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/sse"
)

// panicWriter panics when asked to write an event carrying "boom": a bug
// in a connection actor, as far as its supervisor can tell.
type panicWriter struct{ timedWriter }

func (w *panicWriter) Write(b []byte) (int, error) {
	if strings.Contains(string(b), "boom") {
		panic("panicWriter: boom")
	}
	return w.timedWriter.Write(b)
}

// TestFailingConnectionActorIsStoppedWithItsReason: a connection actor that
// panics is stopped by the streams supervisor, not restarted; its stream
// records Shutdown (it recorded no reason at all before the tree), its
// handler's Wait returns, the stream is no longer counted, and the other
// stream on the channel goes on.
func TestFailingConnectionActorIsStoppedWithItsReason(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{History: -1, Heartbeat: -1, FlushGap: -1})
	good := openTimed(t, h, actors.StreamOptions{Channels: []string{"c"}})
	bad, err := h.Open(&panicWriter{timedWriter{header: http.Header{}}}, actors.StreamOptions{Channels: []string{"c"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.OpenStreams() == 2 }, 5*time.Second, time.Millisecond)

	_, err = h.Publish(context.Background(), "c", sse.Event{Data: []byte("boom")})
	require.NoError(t, err)
	select {
	case <-bad.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the failing stream never ended")
	}
	assert.Equal(t, actors.Shutdown, bad.Wait(context.Background()), "the close reason of a stream whose actor failed")
	assert.Equal(t, 1, h.OpenStreams(), "counted open once Done is closed")

	_, err = h.Publish(context.Background(), "c", sse.Event{Data: []byte("after")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(dataOf(good), "after") }, 5*time.Second, time.Millisecond,
		"the other stream still receives")
}

func dataOf(w *timedWriter) string {
	var b strings.Builder
	for _, wr := range w.snapshot() {
		b.WriteString(wr.data)
	}
	return b.String()
}

// TestFailingChannelActorIsReplaced: a channel actor that panics is stopped
// by the router, which closes its subscribers with Shutdown and forgets it;
// the next stream on the channel gets a fresh actor and its events (before
// the tree, the router kept the dead actor's PID and the new stream heard
// nothing).
func TestFailingChannelActorIsReplaced(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{History: -1, Heartbeat: -1, FlushGap: -1, Observer: &actorstest.FailingChannel{Channel: "bad"}})
	first, err := h.Open(&timedWriter{header: http.Header{}}, actors.StreamOptions{Channels: []string{"bad"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.Channels() == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = h.Publish(ctx, "bad", sse.Event{Data: []byte("lost")})
	require.ErrorIs(t, err, actors.ErrOutcomeUnknown, "the channel failed before it answered")
	select {
	case <-first.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the failed channel's subscriber was never closed")
	}
	assert.Equal(t, actors.Shutdown, first.Reason())
	require.Eventually(t, func() bool { return h.Channels() == 0 }, 5*time.Second, time.Millisecond, "the router forgot the failed channel")

	w := openTimed(t, h, actors.StreamOptions{Channels: []string{"bad"}})
	_, err = h.Publish(context.Background(), "bad", sse.Event{Data: []byte("again")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(dataOf(w), "again") }, 5*time.Second, time.Millisecond,
		"a new stream on the channel receives its events")
}

// A publish whose channel actor fails before answering gets an answer
// anyway, between PublishPatience and twice it: the event's outcome is
// unknown (the actor may have taken it). Before, it waited for as long as
// its context allowed, for ever with context.Background().
func TestPublishToAFailedChannelEndsInTime(t *testing.T) {
	const patience = 100 * time.Millisecond
	h := actorstest.NewHub(t, actors.Config{History: -1, Heartbeat: -1, FlushGap: -1, Observer: &actorstest.FailingChannel{Channel: "bad"}, PublishPatience: patience})
	start := time.Now()
	ended := make(chan error, 1)
	go func() {
		_, err := h.Publish(context.Background(), "bad", sse.Event{Data: []byte("lost")})
		ended <- err
	}()
	select {
	case err := <-ended:
		require.ErrorIs(t, err, actors.ErrOutcomeUnknown)
		assert.Contains(t, err.Error(), `channel "bad" did not answer within 100ms`)
		assert.GreaterOrEqual(t, time.Since(start), patience, "not before a whole period")
	case <-time.After(5 * time.Second):
		t.Fatal("the publish to a failed channel never ended")
	}
	// The next publish gets a fresh channel actor.
	_, err := h.Publish(context.Background(), "bad", sse.Event{Data: []byte("again")})
	require.NoError(t, err)
}

// TestFailedChannelSettlesWhatItQueued: what waits in a channel actor's
// mailbox when it fails is answered at once, not dropped with the actor. A
// queued publish was certainly not taken (ErrChannelFailed, long before
// its patience), a stream whose join was queued is closed so that it
// reconnects (before, it stayed open and heard nothing from the channel),
// and a presence query counts none. The one event the actor was handling
// is still only "unknown"; the channel then serves again.
func TestFailedChannelSettlesWhatItQueued(t *testing.T) {
	fail := &actorstest.FailingChannel{Channel: "bad", Held: make(chan struct{}), Release: make(chan struct{})}
	h := actorstest.NewHub(t, actors.Config{History: -1, Heartbeat: -1, FlushGap: -1, Observer: fail, PublishPatience: time.Minute})
	subscriber, err := h.Open(&timedWriter{header: http.Header{}}, actors.StreamOptions{Channels: []string{"bad"}})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failing := make(chan error, 1)
	go func() {
		_, err := h.Publish(ctx, "bad", sse.Event{Data: []byte("fails")})
		failing <- err
	}()
	<-fail.Held
	queuedAt := actors.SentTo(h, "bad")

	joiner, err := h.Open(&timedWriter{header: http.Header{}}, actors.StreamOptions{Channels: []string{"bad"}})
	require.NoError(t, err)
	queued := make(chan error, 1)
	go func() {
		_, err := h.Publish(ctx, "bad", sse.Event{Data: []byte("queued")})
		queued <- err
	}()
	counted := make(chan int, 1)
	go func() {
		n, err := h.Subscribers(ctx, "bad")
		assert.NoError(t, err)
		counted <- n
	}()
	require.Eventually(t, func() bool { return actors.SentTo(h, "bad") == queuedAt+3 }, 5*time.Second, time.Millisecond,
		"the join, the publish and the query reach the channel")
	close(fail.Release)

	err = <-queued
	require.ErrorIs(t, err, actors.ErrChannelFailed)
	assert.NotErrorIs(t, err, actors.ErrOutcomeUnknown, "certainly not taken")
	assert.Equal(t, 0, <-counted)
	for _, s := range []*actors.Stream{joiner, subscriber} {
		select {
		case <-s.Done():
			assert.Equal(t, actors.Shutdown, s.Reason())
		case <-time.After(5 * time.Second):
			t.Fatal("a stream of the failed channel stayed open")
		}
	}
	cancel()
	require.ErrorIs(t, <-failing, actors.ErrOutcomeUnknown, "the event it was handling may have been taken")

	w := openTimed(t, h, actors.StreamOptions{Channels: []string{"bad"}})
	_, err = h.Publish(context.Background(), "bad", sse.Event{Data: []byte("again")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(dataOf(w), "again") }, 5*time.Second, time.Millisecond)
}
