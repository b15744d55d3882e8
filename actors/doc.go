// Package actors is Squall's channel broker, built on protoactor-go: one
// actor per channel and one per open stream.
//
// A [Hub] routes every channel message through a router actor that owns the
// map from channel name to channel actor, spawning channels on first use.
// A channel actor owns its subscriber set, its heartbeat timer and, in memory
// mode, its history ring. It encodes each event once; the same immutable
// bytes go to every subscriber. Each stream has an outbox (the frames
// published to it and not yet written) and a connection actor, the only
// writer of its http.ResponseWriter: a channel pushes a frame into the
// outbox and wakes the connection actor only if no wake-up is already on its
// way, so a burst costs one mailbox message, one write and one flush per
// stream, whatever its size. A connection actor that wrote events less than
// Config.FlushGap ago waits for the rest of the gap (a time.AfterFunc sends
// it the wake-up), which keeps its outbox marked as woken meanwhile: a stream
// under a high event rate writes once per gap instead of once per event.
//
// # Ids, history and resume
//
// Without a publisher-given id, an event's id is its position in its
// channel, "<unix ms>-<seq>", the shape of a Redis stream id, so ids read the
// same in memory and in cluster mode and never go back when a channel actor
// restarts. A stream that resumes (Last-Event-ID) gets, per channel, every
// retained event strictly after that id, then live events, with no gap and
// no duplicate: the channel actor sends the replay and adds the subscriber in
// one Receive, so no publish can fall between. An unknown or expired id gets
// an "event: reset" first. A stream on several channels is sent composite
// ids ("a=ID&b=ID", URL query encoding) so that one Last-Event-ID resumes
// every channel from its own point.
//
// # Slow consumers
//
// Each outbox is bounded in frames and bytes ([Config].MaxQueueFrames,
// MaxQueueBytes). Past the bound, the [Overflow] policy applies: Disconnect
// closes the stream with [SlowConsumer] (the client resumes from history),
// DropOldest and DropNewest discard frames and count them. A publish never
// waits for a client, and a stalled client delays nobody else.
//
// # Concurrency
//
// The router, channel and connection actors use Squall's own unbounded
// mailbox, which binds its run function once so that waking an idle actor
// does not allocate. Timers only send a message; all state changes happen in
// Receive. Every message type implements IgnoreDeadLetterLogging. Failing
// actors are stopped, not restarted: a channel that stops closes its
// subscribers, who reconnect and resume. The HTTP handler that opened a
// stream parks in [Stream.Wait] until the connection actor has stopped, so
// nothing writes to a ResponseWriter after its handler returns.
//
// # Shutdown
//
// [Hub.Drain] refuses new streams and publishes, sends every open stream a
// jittered "retry:" hint and closes it; [Hub.Shutdown] drains, then stops
// every channel actor and the router, and the actor system if the hub
// created it. A system passed in through [Config].System is left running.
package actors
