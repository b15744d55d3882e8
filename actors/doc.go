// Package actors is Squall's channel broker, built on protoactor-go: one
// actor per channel and one per open stream.
//
// A [Hub] has a router actor that owns the map from channel name to
// channel actor, spawning channels on first use. In memory mode a publish
// and a join go straight to a channel actor the router has published, and
// through the router only when there is none yet (see "Concurrency").
// A channel actor owns its subscriber set, its heartbeat timer and, in memory
// mode, its history ring. It encodes each event once; the same immutable
// bytes go to every subscriber. Each stream has an outbox (the frames
// published to it and not yet written) and a connection actor, the only
// writer of its http.ResponseWriter: a channel pushes a frame into the
// outbox and wakes the connection actor only if no wake-up is already on its
// way, so a burst costs one mailbox message, one write and one flush per
// stream, whatever its size. A connection actor that falls behind (woken
// for one frame, it finds more queued when it runs) writes events at most
// once per Config.FlushGap for a while: one that wrote events less than a
// gap ago waits for the rest of it (the hub's gap clock, one timer per
// millisecond that has streams due rather than one per stream, sends it
// the wake-up), which keeps its outbox marked as woken meanwhile, so a stream
// under a rate the process cannot serve with a write per event writes once
// per gap instead. A stream that keeps up writes each event at once
// (Config.FixedFlushGap makes every stream wait out the gap).
//
// A channel actor is the same in every mode; what differs is its log,
// which decides where ids and history come from and how a resuming stream
// is replayed: in memory mode the channel numbers and keeps its events
// itself; in cluster mode the [Cluster] does (Redis), and events come back
// through [Hub.DeliverChecked]; a direct stream's own channel numbers its
// events and keeps none.
//
// # One check where data enters
//
// A publish is checked once, where it enters the hub: [Hub.Check] (the
// channel name and the event's rules) builds a [Checked], the only form
// [Hub.PublishChecked], [Hub.DeliverChecked] and the [Cluster] take, and
// they do not check it again. The HTTP edge checks a body, the relay a
// message from Redis, and [Hub.PublishOnce] and [Hub.Deliver] a Go call.
// [Hub.PublishChecked] is the one way a publish goes in, in either mode.
//
// # Ids, history and resume
//
// Without a publisher-given id, an event's id is its position in its
// channel, "<unix ms>-<seq>", the shape of a Redis stream id, so ids read the
// same in memory and in cluster mode and never go back when a channel actor
// restarts. A stream that resumes (Last-Event-ID) gets, per channel, every
// retained event strictly after that id, then live events, with no gap and
// no duplicate (see below). A publisher that reuses an id resumes from its
// latest use: nothing at or before it is sent again. An unknown or expired id gets
// an "event: reset" first. A stream on several channels is sent composite
// ids ("a=ID&b=ID", URL query encoding) so that one Last-Event-ID resumes
// every channel from its own point.
//
// A replay is handed over as the stream drains, never at once: the channel
// keeps a cursor per resuming stream and fills at most half of the stream's
// byte and frame bound with replayed frames (the other half stays free for
// live frames of the stream's other channels); the connection actor, after
// each flush that leaves the outbox below that half, sends the channel a
// refillMsg and the channel hands over the next part. The stream joins the
// channel's live subscribers once its cursor reaches the newest event, in
// the same Receive, so live frames can neither overtake the replay nor be
// lost. In memory mode the replay is read straight from the history ring
// (the cursor is an absolute index, so nothing is copied); a cursor that
// the ring turns over before the client read that far is a slow consumer:
// the stream is closed with [SlowConsumer] and, resuming, gets a reset. In
// cluster mode the channel asks the [Replayer] for one page at a time, off
// the actor (From is the last position handed over); frames the relay
// delivers meanwhile are held up to the stream's byte bound and, past it,
// dropped and read back with the next page, since they are in the shared
// history. One flush writes at most 64 KiB and the rest follows at once.
//
// # History memory
//
// In memory mode each channel's history is bounded by count
// ([Config].History), bytes ([Config].HistoryBytes) and age
// ([Config].HistoryTTL); a frame costs its bytes, id and idempotency key
// plus about 200 bytes of bookkeeping. All histories together are bounded
// by [Config].HistoryBudget, which also counts about 2 KB for each channel
// that holds history (an idle channel actor lives as long as its history).
// The budget is kept by one budget actor, not by shared state: each
// channel sends it one budgetUpdate per change (what it kept, up to where
// it evicted); past the budget, the budget actor takes the oldest frames of
// all channels off its books and sends their channels a budgetEvict. So
// eviction is oldest first across channels, the budget takes no lock, and
// memory passes the budget only by what is in flight in
// mailboxes. A channel whose history empties goes idle and stops. A resume
// into an evicted range gets a reset, whatever evicted it; evictions are
// reported by reason to a [HistoryObserver].
//
// # Idempotency keys
//
// [Hub.PublishOnce] with a key: the channel remembers the key as long as
// the event it came with is in the history (count, bytes, age or budget
// alike); a publish with a key it remembers is not delivered and answers
// the first event's id with Duplicate set. With history disabled, or for
// an event larger than HistoryBytes (delivered but not kept), keys are not
// remembered.
//
// # Slow consumers
//
// Each outbox is bounded in frames and bytes ([Config].MaxQueueFrames,
// MaxQueueBytes). Past the bound, the [Overflow] policy applies: Disconnect
// closes the stream with [SlowConsumer] (the client resumes from history),
// DropOldest and DropNewest discard frames and count them. A publish never
// waits for a client, and a stalled client delays nobody else.
//
// # The supervision tree
//
// Every actor of a hub has a parent that supervises it; the hub actor is
// the only one spawned at the root of the actor system:
//
//	hub actor (Root.Spawn; stops a failing streams supervisor or router,
//	│          restarts an adopted actor as protoactor's default does)
//	├── streams supervisor (stops a failing connection actor)
//	│   ├── connection actor, one per stream opened with Hub.Open
//	│   └── connection actor of a Hub.OpenDirect stream
//	│       └── its own channel actor (stopped with it)
//	├── router (stops a failing channel actor and forgets it)
//	│   ├── channel actor, one per channel with subscribers or history
//	│   └── history budget actor (memory mode with a HistoryBudget)
//	└── relay actor (cluster mode: redisrelay spawns it with [Hub.SpawnChild])
//
// The streams supervisor is the only record of the open streams: opening
// a stream is one message to it (it spawns the connection actor, which
// answers once started); [Hub.OpenStreams], [Hub.Drain], [Hub.Shutdown]
// and [Hub.Disconnect] are messages it answers by reading its children
// (for Disconnect, with the Stream it keeps by each child's PID, which
// holds its subject and channels). [Hub.Presence] and [Hub.Subscribers]
// are answered the same way by the router and its channel actors. A direct stream's
// channel is its connection actor's child, not the streams supervisor's:
// it serves that one stream and nothing else, so it lives and dies with
// it, and [Stream.Done] closes only once both are gone. A stream on
// several channels cannot be the child of each; channels learn of streams
// by join and leave messages. Events do not travel down the tree: a
// channel actor queues a frame straight into the outbox of each subscriber
// and wakes its connection actor, so the tree adds no mailbox hop per
// event. A connection actor and its mailbox live inside their [Stream],
// and a wake-up is posted to that mailbox directly rather than through
// the actor's PID (which reaches the same mailbox by way of the process
// registry's entries): a broadcast wakes thousands of streams, each cold
// in the cache, and each pointer followed is a wait on memory. A failing
// connection actor's stream records [Shutdown] as its close reason, as do
// the subscribers of a failing channel actor.
//
// Nothing sent to a channel actor that stops is left unanswered. The event
// it fails on is the one whose outcome is unknown: its publisher hears so
// once Config.PublishPatience runs out. What waits in its mailbox, what is
// posted while it stops, and what reaches it as a dead letter once it has
// left the registry, it will never handle: a publish is answered
// [ErrChannelFailed] (not taken; [ErrClosed] once the hub is closing,
// or for a direct stream's own channel), a stream whose join it was is closed
// with [Shutdown] like its subscribers, a presence query counts none. From
// the moment it stops, direct senders go through the router, which spawns
// a fresh actor for the channel.
//
// # Concurrency
//
// The router, channel and connection actors use Squall's own unbounded
// mailbox, which binds its run function once so that waking an idle actor
// does not allocate. A woken actor's turn runs on one of the hub's
// workers, goroutines kept between turns (at most 128 idle per hub). When
// none is idle, as when a broadcast wakes thousands of connection actors,
// the turn joins a backlog that every worker drains before it waits, so a
// burst runs on a few goroutines instead of one per turn. A turn waits
// for a worker only briefly: if no turn leaves the backlog for 2 ms (its
// workers stuck in writes to stalled clients), each turn in it gets a
// goroutine of its own, so a connection actor stuck in a write holds up
// others' turns by a few milliseconds at most. A publish
// that finds its channel actor idle runs the actor's turn for it on the
// publisher's own goroutine (it only queues frames and wakes connection
// actors), which spares two goroutine switches per publish; the turn is
// still the actor's one at a time, through its mailbox. Timers only
// send a message; all state changes happen in
// Receive. Every message type implements IgnoreDeadLetterLogging. Failing
// actors of the hub are stopped, not restarted (the relay aside, see the
// tree): a channel that stops closes its
// subscribers, who reconnect and resume. The HTTP handler that opened a
// stream parks in [Stream.Wait] until the connection actor has stopped, so
// nothing writes to a ResponseWriter after its handler returns.
//
// Actors share little, and only through named methods. The locks, who
// takes each, and their order:
//
//   - mailbox.mu, one per actor: taken by every sender to that actor and by
//     its run loop, for one queue push or pop.
//   - outbox.mu, one per stream: taken by the channel actors that feed the
//     stream, only through [Stream] offer, offerControl and offerReplay, and
//     by the stream's connection actor (take, takeWaiters, isCrowded,
//     close) and [Stream.Dropped]. A stalled client cannot hold it: the
//     connection actor takes its frames under the lock and writes them
//     after releasing it.
//   - Hub.chansMu, one per hub: the router's published map from channel
//     name to channel actor, written only by the router (a channel is
//     added after the message that spawned it was sent, and removed when
//     it ends) and read by Hub.direct for one lookup, so that a publish
//     or a join skips the router's hop. What keeps an idle channel's stop
//     safe is an atomic count per channel (routed.sent) of what was sent
//     to it, by the router or straight: the router stops a channel only if
//     it has handled that many, closing it to direct senders in the same
//     compare-and-swap; a sender that finds it closed goes through the
//     router. A join goes the same way as a publish, and Hub.Open returns
//     only once a join sent to the router has been passed on, so a
//     publish made after Open (or once the client sees the headers)
//     queues behind it even if the router publishes the channel
//     meanwhile.
//   - workerPool.mu, one per hub: taken by a turn's sender that found no
//     idle worker, to queue the turn in the backlog, by a worker taking
//     the next turn from it, and by the backlog's watch handing out a
//     stalled backlog (it starts the goroutines after releasing it).
//   - gapClock.mu, one per hub: taken by a connection actor asking for
//     the wake-up that ends its flush gap, by the clock's timer taking
//     the streams due at a tick (it sends their wake-ups after releasing
//     it), and by Hub.Shutdown stopping the clock.
//   - Stream.cutMu, one per stream: taken by kill's cut (a channel actor
//     interrupting a slow consumer's write by moving its deadline) and by
//     end (the connection actor, once stopped), so that a cut never
//     touches a connection the server has reused.
//
// Order: none of these locks is ever held while another is taken, while a
// message is sent, or during a write; each is a leaf. (The cut calls
// SetWriteDeadline under cutMu, which takes only net/http's and the
// socket's own locks.) Everything else shared is atomic: a stream's abort
// flag and its close reason (the first recorded wins), the hub's closed
// flag, a mailbox's counters, a channel's sent count. Package-level
// sync.Pools hold reply channels and flush buffers, never state.
//
// # Shutdown
//
// [Hub.Drain] refuses new streams and publishes, and has the streams
// supervisor send every open stream a jittered "retry:" hint and close it;
// past its deadline, the streams left are stopped. [Hub.Shutdown] drains,
// then has each supervisor stop its children and then itself, from the
// hub actor down, stops the actor system if the hub created it, and ends
// the hub's idle workers. A
// system passed in through [Config].System is left running.
package actors
