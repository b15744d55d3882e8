// Package loadgen is the bench suite's load generator: it opens SSE streams
// to the servers under test, publishes to them, and measures deliveries per
// second, publish-to-receive latency, memory per idle stream and
// correctness (every event exactly once per stream) for one scenario.
// [Run] is the entry point; its [Result] is what the orchestrator prints.
//
// # Concurrency
//
// Each stream has one reader goroutine that owns its connection's read
// side, its sequence tracker and its Last-Event-ID; other goroutines only
// close the connection (under the stream's mutex) or flip atomic flags.
// Publishers are short-lived goroutines per phase. Shared counters are
// atomics, added once per read rather than once per event.
//
// # Shutdown
//
// Run closes every stream and waits for every reader and publisher before
// it returns, and cancelling its context ends a run early the same way.
// Stalled streams are released first so that their readers can finish.
package loadgen
