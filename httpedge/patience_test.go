package httpedge_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
)

// failingChannel makes the channel actor of "bad" panic on its first event:
// a bug in a channel actor.
type failingChannel struct {
	actorstest.NopObserver
	fired atomic.Bool
}

func (o *failingChannel) Published(channel string) {
	if channel == "bad" && o.fired.CompareAndSwap(false, true) {
		panic("failingChannel: bad")
	}
}

// A publish whose channel actor fails is answered 504 (outcome unknown)
// within the hub's patience, not left waiting for as long as the client
// waits; the hub keeps serving other channels and the failed one.
func TestPublishToAFailedChannelIs504(t *testing.T) {
	s := newHubServer(t, actors.Config{Observer: &failingChannel{}, PublishPatience: 100 * time.Millisecond}, httpedge.Config{})
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
