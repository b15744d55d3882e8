// Package squall is Squall as a library: [New] builds a working SSE broker
// from a [Config] (in memory, or over Redis when a URL is given, with the
// relay started and stopped by the broker) and the [Broker] is an
// [net/http.Handler] to mount where you like:
//
//	broker, err := squall.New(squall.Config{RedisURL: "redis://127.0.0.1:6379/0"})
//	mux.Handle("/sse/", broker) // GET /sse/events, POST /sse/publish, …
//
// It serves the same API as the squall binary (see docs/http-api.md),
// under the mount point. The parts it wires (package actors' hub,
// httpedge's edge, redisrelay's relay) stay available for programs that
// need another shape.
//
// # Memory
//
// The binary runs with GODEBUG=adaptivestackstart=0, which saves a little
// stack per stream (about 0.4 KB on /events; see cmd/squall). A program that embeds Squall gets
// the same by putting this line above its own package main:
//
//	//go:debug adaptivestackstart=0
//
// # Concurrency
//
// A Broker is safe for concurrent use. Its streams are actors in the hub's
// actor system; each stream's handler goroutine waits for its actor, so no
// write happens after a handler returns. In cluster mode the relay owns one
// goroutine that reads the Redis subscription and one that probes writes.
//
// # Shutdown
//
// [Broker.Shutdown] drains the edge (readyz 503, streams closed with a
// retry hint), stops the hub, then the relay, and returns when all of them
// have stopped; call it before http.Server.Shutdown.
package squall
