package httpedge

import (
	"context"
	"net/http"

	"github.com/squall-sse/squall/actors"
)

// Producer publishes to one stream until it returns or ctx ends. ctx ends
// when the client leaves or the stream is closed for any other reason.
type Producer func(ctx context.Context, s *actors.Stream) error

// StreamHandler turns produce into an SSE endpoint, one stream per request:
// the Go form of the Python SDK's EventStream + sse_response. Only a GET
// without a body opens one (405 or 400 otherwise), as on the Server's
// GET /events, so that every stream notices its client leaving. The stream
// closes when produce returns (after what it published is written), and
// produce's context ends when the client leaves, so no producer outlives its
// client.
func StreamHandler(hub *actors.Hub, produce Producer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseStream(w, r) {
			return
		}
		WriteHeaders(w, r)
		s, err := hub.OpenDirect(w)
		if err != nil {
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		produced := make(chan struct{})
		go func() {
			defer close(produced)
			_ = produce(ctx, s)
			s.Close(0)
		}()
		// Wait returns once the stream has ended for any reason (client
		// gone, producer done, slow consumer, drain); then the producer stops.
		s.Wait(r.Context())
		cancel()
		<-produced
	})
}
