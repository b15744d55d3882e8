package httpedge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

// A publish whose channel actor fails is answered 504 (outcome unknown)
// within the hub's patience, not left waiting for as long as the client
// waits; the hub keeps serving other channels and the failed one.
func TestPublishToAFailedChannelIs504(t *testing.T) {
	s := newHubServer(t, actors.Config{Observer: &actorstest.FailingChannel{Channel: "bad"}, PublishPatience: 100 * time.Millisecond}, httpedge.Config{})
	good := s.subscribe(t, "channel=good", nil)
	start := time.Now()
	r := do(t, "POST", s.srv.URL+"/publish", `{"channel":"bad","data":"x"}`, nil)
	assert.Equal(t, http.StatusGatewayTimeout, r.status)
	assert.Contains(t, r.err, "outcome unknown")
	assert.Less(t, time.Since(start), 5*time.Second)
	s.mustPublish(t, "good", "still here")
	good.RequireNext(t, "still here")
	s.mustPublish(t, "bad", "a fresh channel actor")
}

// A publish queued behind a channel actor that fails was certainly not
// taken: it is answered at once with 503, Retry-After and a reason that
// says so, not left to the hub's patience as "outcome unknown".
func TestPublishQueuedBehindAFailedChannelIs503(t *testing.T) {
	fail := &actorstest.FailingChannel{Channel: "bad", Held: make(chan struct{}), Release: make(chan struct{})}
	s := newHubServer(t, actors.Config{Observer: fail, PublishPatience: time.Minute}, httpedge.Config{})
	s.subscribe(t, "channel=bad", nil)
	// Once a query about the channel is answered, the router has published
	// the channel actor, so the publishes below go straight to it: the
	// first runs its turn on its own goroutine (and fails in it), the next
	// waits in the channel's mailbox.
	n, err := s.hub.Subscribers(context.Background(), "bad")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failing := make(chan error, 1)
	go func() {
		_, err := s.hub.Publish(ctx, "bad", sse.Event{Data: []byte("fails")})
		failing <- err
	}()
	<-fail.Held
	awaiting := actorstest.AwaitingPublishes()
	queued := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(s.srv.URL+"/publish", "application/json", strings.NewReader(`{"channel":"bad","data":"queued"}`))
		if !assert.NoError(t, err) {
			resp = nil
		}
		queued <- resp
	}()
	require.Eventually(t, func() bool { return actorstest.AwaitingPublishes() == awaiting+1 }, wait, time.Millisecond,
		"the HTTP publish waits in the channel's mailbox")
	close(fail.Release)

	start := time.Now()
	resp := <-queued
	require.NotNil(t, resp)
	defer resp.Body.Close()
	var answer map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, answer["error"], "not accepted")
	assert.Contains(t, answer["error"], "stopped before it took the event")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Less(t, time.Since(start), 5*time.Second, "answered long before the minute of patience")
	// The event the channel failed on may have been taken: unknown, once
	// its publisher stops waiting.
	cancel()
	require.ErrorIs(t, <-failing, actors.ErrOutcomeUnknown)
	s.mustPublish(t, "bad", "a fresh channel actor")
}
