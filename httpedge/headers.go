package httpedge

import (
	"net/http"
)

// StartStream writes the SSE response headers and flushes them, so that the
// client (and any proxy between) sees the stream open before the first event.
// It must be called before anything else is written to w.
func StartStream(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	// Connection is a hop-by-hop header that HTTP/2 and later forbid.
	if r.ProtoMajor == 1 {
		h.Set("Connection", "keep-alive")
	}
	// An SSE response must never be compressed or transformed on the way.
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w).Flush()
}
