// Package redisrelay runs Squall in cluster mode: every hub publishes
// through Redis and relays what Redis sends back, so that a publish on any
// node reaches every subscriber on every node, in one order, with the same
// ids, and any node can replay a channel's history for Last-Event-ID.
//
// A [Relay] is three things. [Relay.PublishChecked] is the hub's publisher
// ([Relay.Publish] for a Go caller): one Lua script, run with EVALSHA, appends the event
// to its channel's history stream and publishes its envelope, atomically,
// so the stream entry id is the event's place in the history (an
// actors.Pos) on every node and, when the publisher gave none, its id.
// [Relay.Replay] is the hub's cluster history. Together they make a
// Relay an actors.Cluster; [Relay.Join] and [Relay.Leave] make it an
// actors.Interest, told by the hub which channels it has streams on.
// [Relay.Start] subscribes (to those channels, or with [InterestAll] to
// PREFIX:*) and hands every message to a relay actor that validates it and
// calls the hub's Deliver.
//
// # Backends
//
// One redis.UniversalClient carries everything: a single Redis, a
// Sentinel-managed master (Config.SentinelMaster) or a Redis Cluster
// (redis+cluster://h1:p1,h2:p2, or several hosts), built from Config.URL or
// given by an embedder in Config.Client. Publishes are sent once whatever
// the client: go-redis follows MOVED and ASK but never retries the publish
// script, and a node without the script in its cache (a promoted replica)
// gets EVAL after EVALSHA's NOSCRIPT. After a failure that is not Redis's
// answer, a cluster client reloads its slot map, so a failover is followed
// within the cluster's own failover time.
//
// # Interest
//
// With [InterestChannels] (the default) the relay subscribes to a channel
// while the hub has a stream on it: SUBSCRIBE PREFIX:C, or SSUBSCRIBE
// PREFIX:{TAG}:C with sharded pub/sub on a cluster. One goroutine turns
// joins and leaves into commands, taking every change pending when it
// wakes, so a storm of joins costs a few commands of up to 1,000 channels
// (sharded: one per partition, since Redis refuses an SSUBSCRIBE across
// slots). Each confirmation from Redis, first or after a reconnection,
// has the relay actor read the history from the last position it relayed
// on the channel or, when later or none, from the position of the join (the
// join's local time converted by the Redis clock offset the write probe
// measures, less its uncertainty): nothing published between a stream's
// join and the confirmation, or while the connection was down, is lost.
// Events of channels without a local stream never reach the node.
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
// the Python SDK's); with sharded pub/sub on a cluster, on the shard
// channel PREFIX:{TAG}:C. On a cluster every key of C below has "{TAG}:"
// before C, TAG being the hash tag of C's partition (Config.Partitions,
// chosen to spread evenly over the slots), so that the publish script's
// keys share one slot. Its history is the stream PREFIX:history:C, whose
// entries hold the publisher's id in field "i" ("" when none) and the
// envelope's data, event and retry in field "e" (a JSON object). The stream
// keeps History+1 entries (MAXLEN =): the oldest one only marks the
// resume point of a client that saw it, so it gets the History newest.
// Two keys index it, written by the same publish script:
//
//   - PREFIX:history-ids:C, a hash from each publisher id to the stream id
//     of its most recent retained entry, so that a resume by publisher id
//     is a lookup, not a scan, and a reused id resumes from its latest use;
//   - PREFIX:history-log:C, a list of the retained entries' stream ids
//     (each followed by a space and its publisher id, if any), oldest
//     first: trimming pops exactly the entries it drops and removes their
//     ids from the hash, in O(entries trimmed), without reading event data.
//
// With HistoryTTL set, each publish also trims entries older than the TTL,
// by the Redis clock (XTRIM MINID), keeping the newest aged-out entry as
// that marker, and sets the three keys to expire after the TTL, so an idle
// channel's history disappears. With History < 0 the stream is kept with
// MAXLEN 0: it holds no entry and only assigns ids, and it expires after
// the TTL (10 minutes when there is none). An idempotency key K given to
// [Relay.PublishOnce] is the string PREFIX:idem:C|K, holding the event's
// id for IdempotencyWindow. PREFIX:probe is the write probe's key
// (PREFIX:probe:{TAG} for each partition of a cluster, so that every master
// is probed). The scripts declare every key they touch. Every node must use
// the same prefix, History, HistoryTTL, ShardedPubSub and Partitions.
//
// # Envelope
//
// Every message on PREFIX:C is a JSON object (docs/redis-envelope.md documents it for
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
// the sink refuses as too large (actors.Hub.Check: over its stream
// queue bound) is dropped and counted the same way ([Relay.Oversize]):
// delivered, it would reach no subscriber.
//
// # Resume
//
// [Relay.Replay] answers one page at a time (the actors.Replayer contract):
// the first page finds the resume point by stream id, else through the
// publisher-id index, and every page reads forward in stream id order with
// COUNT, in chunks sized by the page's byte cap, so the work of one call is
// bounded by the page (at most MaxEvents events and MaxBytes bytes, at
// least one event) whatever the id. A stream id older than the oldest
// retained entry is expired; anything else not found is unknown. When the
// first event after the point is older than HistoryTTL (it aged out but
// nothing was published since to trim it), the point is expired: the
// client missed it. A later page whose point was trimmed meanwhile is
// expired too.
//
// # Publish outcomes and idempotency
//
// The publish script cannot fail after its first write: Redis refuses a
// script for OOM, READONLY or MISCONF only at its first write, and the
// script checks the types of its keys before it. So an error reply from
// Redis, a failed dial, a pool timeout and a write that did not complete
// (the relay dials its own connections to see these) mean the event was
// not taken: a plain error, which the HTTP edge answers with 503. A read
// timeout or a connection lost while waiting for the answer mean the
// script may have run: the error wraps actors.ErrOutcomeUnknown, which the
// edge answers with 504. A publish with an idempotency key can be retried
// safely: the script remembers the key with the event's id, atomically with
// the append, and a repeat within IdempotencyWindow (default HistoryTTL,
// 10 minutes) publishes nothing and answers the first id, Duplicate set.
//
// # Faults
//
// Each subscription connection (one, or one per partition with sharded
// pub/sub) is owned by one goroutine that reads with a timeout
// (PingInterval) and never parses: it hands each message to the relay
// actor's unbounded mailbox at once, so Redis never sees a slow subscriber
// and never cuts it (client-output-buffer-limit pubsub). It reports up when
// Redis answers (a subscription confirmed, or a PING); it reports down on any error, or after
// MaxMissedPongs pings go unanswered (a hung Redis sends no error, and
// go-redis's own health check does not see it); it reconnects with
// jittered exponential backoff from 50ms to 2s. [Relay.Ready] reports that
// state for /readyz.
//
// Publish and Replay use their own client with 1s dial, read, write and
// pool timeouts, one dial attempt and no retries, so that while Redis is
// away a publish fails within about a second. A retry could run the script
// twice; the caller decides, with an idempotency key.
//
// Readiness also covers writes: a write probe (a script that SETs
// PREFIX:probe, so it meets the same refusals as a publish: OOM, READONLY,
// MISCONF, NOAUTH …) runs every ProbeInterval (500ms), and a failed publish
// counts as a failed probe, so [Relay.Ready] turns down within about one
// interval of Redis refusing writes, with or without publishes, and back up
// at the first probe or publish that works. The change is logged once
// each way; failed publishes are logged at most once per LogInterval, with
// their count. An error reply to the subscription's PING (MISCONF refuses
// even PING) keeps the subscription up: Redis answered.
//
// After a resubscribe, the relay catches up (see Interest; with
// InterestAll, for every channel on which it delivered an event with a
// position within the history window): it reads the stream after that
// point and delivers what it missed, holding live events meanwhile, so the
// channel's order holds and nothing is delivered twice. Not covered: events
// without "pos" (they are in no history), events already trimmed from the
// history (logged) and, with InterestAll, a channel whose first event on
// this node came while the subscription was down; a client still resumes
// those from history by reconnecting.
//
// # Concurrency
//
// Publish, Replay, Ready and Malformed are safe for concurrent use. The
// probe goroutine owns the write probe. The
// receive goroutine owns the *redis.PubSub; the relay actor owns the
// decoding, the per-channel positions for catch-up and the log throttle.
// Catch-up reads run on goroutines the relay owns and report back to the
// actor by message. A panic in the actor restarts it with its state (the
// producer returns the same value); only the message being handled is lost.
//
// # Shutdown
//
// [Relay.Shutdown] refuses new publishes and replays, closes the
// subscription (the receive goroutine sees it and exits), ends the probe,
// waits for both goroutines, stops the relay actor, waits for catch-up reads, then closes
// both Redis clients and, if the relay created it, its actor system. It is
// idempotent and honours its context.
package redisrelay
