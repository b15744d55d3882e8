package httpedge

import (
	"net/http"
)

// route serves path for one method only: any other gets 405 with Allow.
// The mux's own method patterns are not used because "GET /x" also
// matches HEAD, and a HEAD stream is a zombie: net/http eats its writes,
// so no heartbeat ever fails, and a client that sends its next request on
// the same connection stops net/http from noticing that it left.
func (s *Server) route(path, method string, h http.HandlerFunc) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			methodNotAllowed(w, r, method)
			return
		}
		h(w, r)
	})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed here: use "+allow)
}

// refuseStream answers a request that must not open a stream and reports
// whether it did. A stream is only safe when net/http can tell that its
// client left: for that it reads the connection in the background once the
// request body is consumed, and cancels the request's context on EOF. So
// only GET opens one (HEAD eats every write), and only without a body: with
// Content-Length or chunked encoding (also behind Expect: 100-continue)
// the body is never read, the background read never starts, and a client
// that leaves is only noticed by a failed write, never with heartbeats off.
// A pipelined request after the stream's stops that background read too;
// heartbeats reap those (the write to a closed connection fails).
func refuseStream(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, http.MethodGet)
		return true
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// Close: the body may be endless, and it is not worth reading.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusBadRequest, "a stream request has no body")
		return true
	}
	return false
}
