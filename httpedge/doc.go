// Package httpedge is Squall's HTTP edge: the hub's API (GET /events,
// POST /publish, GET /healthz, GET /readyz, and the browser client of
// [github.com/squall-sse/squall/client/browser] at GET /squall.js) as an
// http.Handler, and
// [StreamHandler], which turns a producer function into an SSE endpoint.
//
// Only a GET without a body opens a stream, on /events and through
// StreamHandler alike, so that net/http can tell when its client leaves.
// [ConnLimiter] bounds the connections a listener holds, in all and per
// peer address, closing idle ones first when full.
//
// With Config.AdminSecret, /admin/ serves presence (channels and their
// subscriber counts on this node, or over the cluster with
// Config.ClusterAdmin) and disconnects by subject or channel.
//
// [Auth] checks tokens (HS256, RS256, ES256, EdDSA; keys from a secret,
// PEM or a [JWKS]) or hands the decision to the application's own
// sessions.
//
// The wire format and the spec parser live in the top-level package
// [github.com/squall-sse/squall/sse], which every layer imports and which
// depends on the standard library only.
//
// # Concurrency
//
// A stream on GET /events over HTTP/1.1 is taken over from net/http
// (hijacked) before its headers are written: its handler opens the stream
// on the hub with a writer of the bare connection and returns, and one
// goroutine per stream, started by the handler, waits on a read of the
// connection (a client that sends anything or leaves ends the stream) or
// for the stream to end, then finishes the response, closes the
// connection and releases the stream's slot. The stream's connection actor
// does every write, the headers included. Over HTTP/2 and HTTP/1.0 the
// handler goroutine parks in Stream.Wait instead and net/http finishes the
// response. A producer given to StreamHandler runs on its own goroutine,
// which the handler waits for before it returns.
//
// A [JWKS] runs one goroutine that refreshes the key set; a token with an
// unknown kid fetches it on the request's goroutine, which other requests
// with unknown kids wait for. Its owner (the caller of [NewJWKS]) ends it
// with Close, after the server.
//
// # Shutdown
//
// [Server.StartDraining] turns /readyz to 503 and refuses new streams; the
// hub's Drain then closes the open ones with a retry hint, and
// http.Server.Shutdown finds no handler left to wait for. [Server.Drain]
// returns once every stream's slot is released, which for a taken-over
// stream is after its last chunk is written and its connection closed.
package httpedge
