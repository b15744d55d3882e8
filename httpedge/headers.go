package httpedge

import (
	"net/http"
)

// WriteHeaders sets the SSE response headers and writes the status line
// without flushing. A stream opened with actors.Hub.Open or OpenDirect
// flushes them itself once it is subscribed, so a client that sees the
// headers knows that anything published from then on reaches it. It must be
// called before anything else is written to w.
func WriteHeaders(w http.ResponseWriter, r *http.Request) {
	setStreamHeaders(w.Header(), r)
	w.WriteHeader(http.StatusOK)
}

// setStreamHeaders sets the SSE response headers on h.
func setStreamHeaders(h http.Header, r *http.Request) {
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
}
