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
// subscriber counts on this node) and disconnects by subject or channel.
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
// Each stream's handler goroutine sets the headers, opens the stream on the
// hub and parks in Stream.Wait; the stream's connection actor does every
// write. A producer given to StreamHandler runs on its own goroutine, which
// the handler waits for before it returns.
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
// http.Server.Shutdown finds no handler left to wait for.
package httpedge
