package httpedge_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
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
