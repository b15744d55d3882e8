// Package redisrelay runs Squall in cluster mode: every hub publishes
// through Redis and relays what Redis sends back, so that a publish on any
// node reaches every subscriber on every node, in one order, with the same
// ids, and any node can replay a channel's history for Last-Event-ID.
//
// A [Relay] is three things. [Relay.Publish] is the hub's publisher (an
// httpedge.Publisher): one Lua script, run with EVALSHA, appends the event
// to its channel's history stream and publishes its envelope, atomically,
// so the stream entry id is the event's place in the history (an
// actors.Pos) on every node and, when the publisher gave none, its id.
// [Relay.Replay] is the hub's cluster history. Together they make a
// Relay an actors.Cluster.
// [Relay.Start] subscribes to PREFIX:* and hands every message to a relay
// actor that validates it and calls the hub's Deliver.
//
// Wiring, as cmd/squall does it:
//
//	relay, err := redisrelay.New(redisrelay.Config{URL: url, Prefix: prefix,
//		History: history, HistoryTTL: ttl, Logger: log})
//	hub := actors.New(actors.Config{Cluster: relay, ...})
//	relay.Start(hub.System(), hub)
//	edge := httpedge.New(httpedge.Config{Hub: hub, Ready: relay.Ready})
//	id, err := hub.Publish(ctx, "orders", ev) // through Redis, as every node's
//	...
//	relay.Shutdown(ctx) // before or after hub.Shutdown; Deliver to a closed hub is a no-op
//
// # Redis layout
//
// Channel C travels on the pub/sub channel PREFIX:C (default prefix "sse",
// the Python SDK's). Its history is the stream PREFIX:history:C, whose
// entries hold the publisher's id in field "i" ("" when none) and the
// envelope's data, event and retry in field "e" (a JSON object). The stream
// keeps History+1 entries (MAXLEN =): the oldest one only marks the
// resume point of a client that saw it, so it gets the History newest.
// With HistoryTTL set, each publish also trims entries older than the TTL,
// by the Redis clock (XTRIM MINID), keeping the newest aged-out entry as
// that marker, and sets the key to expire after the TTL, so an idle
// channel's stream disappears. With History < 0 the stream is kept with
// MAXLEN 0: it holds no entry and only assigns ids, and it expires after
// the TTL (10 minutes when there is none). Every node of a cluster must use
// the same prefix, History and HistoryTTL.
//
// # Envelope
//
// Every message on PREFIX:C is a JSON object (the README documents it for
// publishers in any language). The four fields of the Python SDK (tempest-fastapi-sdk
// SSEBroker(redis=...)):
//
//   - "data" (required, any JSON): a JSON string is sent raw, any other
//     value as compact JSON. Squall always writes the event's bytes as a
//     JSON string, which both Squall and the SDK send raw.
//   - "event" (string or null): the event name; null or "" for none.
//   - "id" (string or null): the event's id; null or "" for none. Squall
//     always writes one.
//   - "retry" (non-negative integer of milliseconds, or null).
//
// And Squall's:
//
//   - "v" (integer): the envelope version, 1. Absent reads as 1; any other
//     value is refused.
//   - "channel" (string): the channel, for readers of the raw stream. If
//     present it must equal the channel of the Redis channel name, which is
//     the one used.
//   - "pos" (string): the history stream entry id, "<ms>-<seq>". Absent
//     (or null) for an event that is not in the history.
//
// Unknown fields are ignored. An event without "pos", such as one a Python
// SDK worker publishes with a plain PUBLISH, is delivered live only, with
// its id (if any) passed through unchanged: it is not in the history, so a
// client resuming after it gets a reset event. An envelope that is not a
// JSON object, holds invalid UTF-8, a member name twice or anything after
// the object, lacks "data", has a field of the wrong type, an id or event
// name with CR, LF or NUL, an event name reserved for the hub (see
// actors.ReservedEvent; the sink's heartbeat name too), a negative or
// fractional retry, or arrives on a channel name outside the hub's rule, is
// malformed: it is counted ([Relay.Malformed]), logged at most once per
// LogInterval with the count, and never delivered. An event whose frame
// the sink refuses as too large (actors.Hub.CheckEvent: over its stream
// queue bound) is dropped and counted the same way ([Relay.Oversize]):
// delivered, it would reach no subscriber.
//
// # Resume
//
// [Relay.Replay] finds the resume point by stream id, else by the newest
// entry carrying it as the publisher's id (scanning at most History+1
// entries), and returns everything after it. A stream id older than the
// oldest retained entry is expired; anything else not found is unknown.
// When the first event after the point is older than HistoryTTL (it aged
// out but nothing was published since to trim it), the point is expired:
// the client missed it.
//
// # Faults
//
// The subscription is owned by one goroutine that reads with a timeout
// (PingInterval) and never parses: it hands each message to the relay
// actor's unbounded mailbox at once, so Redis never sees a slow subscriber
// and never cuts it (client-output-buffer-limit pubsub). It reports up when
// Redis confirms the PSUBSCRIBE; it reports down on any error, or after
// MaxMissedPongs pings go unanswered (a hung Redis sends no error, and
// go-redis's own health check does not see it); it reconnects with
// jittered exponential backoff from 50ms to 2s. [Relay.Ready] reports that
// state for /readyz.
//
// Publish and Replay use their own client with 1s dial, read, write and
// pool timeouts, one dial attempt and no retries, so that while Redis is
// away a publish fails within about a second (the HTTP edge answers 503)
// and is never accepted and then lost. A retry could run the script twice.
//
// After a resubscribe, the relay catches up: for every channel on which it
// delivered an event with a position within the history window, it reads
// the stream after that position and delivers what it missed while it was
// down, holding live events meanwhile, so the channel's order holds and
// nothing is delivered twice. Not covered: a channel whose first event on
// this node came while the subscription was down, events without "pos"
// (they are in no history), and events already trimmed from the history
// (logged); a client still resumes those from history by reconnecting.
//
// # Concurrency
//
// Publish, Replay, Ready and Malformed are safe for concurrent use. The
// receive goroutine owns the *redis.PubSub; the relay actor owns the
// decoding, the per-channel positions for catch-up and the log throttle.
// Catch-up reads run on goroutines the relay owns and report back to the
// actor by message. A panic in the actor restarts it with its state (the
// producer returns the same value); only the message being handled is lost.
//
// # Shutdown
//
// [Relay.Shutdown] refuses new publishes and replays, closes the
// subscription (the receive goroutine sees it and exits), waits for the
// goroutine, stops the relay actor, waits for catch-up reads, then closes
// both Redis clients and, if the relay created it, its actor system. It is
// idempotent and honours its context.
package redisrelay
