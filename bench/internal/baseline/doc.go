// Package baseline is the bench suite's yardstick: a minimal net/http SSE
// server with the subset of the hub's HTTP API that the load generator
// uses (GET /events, POST /publish, GET /readyz, GET /healthz, GET
// /debug/memstats). It is what a careful programmer writes in an afternoon:
// each publish is encoded once, each stream has a buffered Go channel of
// shared frames, and a stream's writer flushes once for everything queued.
// A stream whose channel is full is closed (the client resumes with
// Last-Event-ID), so one stalled reader never blocks a publish.
//
// Ids are decimal numbers per channel (a publisher's own id is ignored).
// Each channel keeps the last History frames for resume; an unknown or
// too old Last-Event-ID starts the stream live after a "reset" event, as
// the hub does. With Config.Redis set, publishes go through Redis (one Lua
// call: INCR the channel's id, PUBLISH the event) and every node relays
// what it receives through one pattern subscription, so two baselines form
// a cluster comparable to two hubs. There are no heartbeats, no auth, no
// metrics: what the baseline costs is the cost of net/http streaming.
//
// # Concurrency
//
// A channel is guarded by its mutex: publish assigns the id, appends to the
// history and offers the frame to every subscriber's Go channel without
// blocking. Each stream's handler goroutine is the only writer of its
// ResponseWriter. In cluster mode one goroutine owns the Redis pattern
// subscription.
//
// # Shutdown
//
// [Server.Shutdown] cancels the base context of every stream (handlers
// return at once), shuts the http.Server down and closes the Redis client.
package baseline
