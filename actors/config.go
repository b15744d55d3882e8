package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Overflow is what a stream does when a publish would take its queue past
// its bound.
type Overflow int

const (
	// Disconnect closes the stream with [SlowConsumer]; the client comes back
	// with Last-Event-ID and history fills the gap. Nothing is lost silently.
	Disconnect Overflow = iota
	// DropOldest discards the oldest frames not yet written.
	DropOldest
	// DropNewest discards the frame that does not fit.
	DropNewest
)

var overflowNames = [...]string{"disconnect", "drop-oldest", "drop-newest"}

func (o Overflow) String() string {
	if o < 0 || int(o) >= len(overflowNames) {
		return "overflow(?)"
	}
	return overflowNames[o]
}

// ParseOverflow maps "disconnect", "drop-oldest" and "drop-newest" to their
// Overflow.
func ParseOverflow(s string) (Overflow, error) {
	for i, n := range overflowNames {
		if n == s {
			return Overflow(i), nil
		}
	}
	return 0, errorf("unknown overflow policy %q (want disconnect, drop-oldest or drop-newest)", s)
}

// Config configures a [Hub]. The zero value works.
type Config struct {
	// System is the protoactor actor system to spawn into. Nil means the hub
	// creates its own, logging through Logger; a system passed in is never
	// shut down by the hub.
	System *actor.ActorSystem

	// Logger receives the hub's and, for a system the hub creates, the actor
	// system's logs. Nil discards them.
	Logger *slog.Logger

	// Heartbeat is the idle time after which each channel sends the
	// ": keepalive" comment. Zero means 15s; negative disables heartbeats.
	Heartbeat time.Duration

	// HeartbeatEvent, when set, makes the heartbeat a named event with empty
	// data (for clients that watch for one, such as tempest-react-sdk's
	// heartbeatEvents: ["ping"]) instead of the ": keepalive" comment, which
	// EventSource never sees. It must not contain CR, LF or NUL.
	HeartbeatEvent string

	// WriteTimeout bounds every flush to a client: a write that has not
	// completed after WriteTimeout (up to a quarter more) ends the stream.
	// Zero means 10s.
	WriteTimeout time.Duration

	// FlushGap bounds how long a stream holds events back to write them
	// together. By default only a stream that falls behind does: when its
	// connection actor, woken for one event, finds more already queued
	// (the process did not get to it before the next came), it writes at
	// most once per gap for the next coalesceHold, and then tries writing
	// each event at once again. A stream that keeps up writes every event
	// as soon as it is woken, so moderate rates pay no gap. Zero means
	// 20ms; negative flushes every wake-up at once.
	FlushGap time.Duration

	// FixedFlushGap makes every stream write events at most once per
	// FlushGap, whether or not it falls behind: a stream quiet for a gap
	// writes at once, one that had an event written less than a gap ago
	// waits for the rest of it.
	FixedFlushGap bool

	// MaxQueueFrames is how many frames may wait for one stream before its
	// Overflow policy applies. Zero means 1000; negative means no frame bound.
	MaxQueueFrames int

	// MaxQueueBytes is how many bytes may wait for one stream before its
	// Overflow policy applies. Zero means 1 MiB; negative means no byte bound.
	MaxQueueBytes int

	// Overflow is the policy for a stream past its bound. The zero value is
	// Disconnect.
	Overflow Overflow

	// History is how many events each channel keeps for Last-Event-ID resume.
	// Zero means 1000; negative disables history.
	History int

	// HistoryTTL is how long a kept event stays replayable. Zero means 10m;
	// negative means events expire only by count and bytes.
	HistoryTTL time.Duration

	// HistoryBytes bounds each channel's history in memory mode, in bytes
	// of what its events hold (their encoded frame, id and idempotency key,
	// plus about 200 bytes of bookkeeping each); the oldest events go
	// first. An event larger than the bound on its own is delivered but
	// not kept. Zero means 4 MiB, which keeps the default 1,000 events of
	// up to about 4 KB each; negative means no byte bound.
	HistoryBytes int

	// HistoryBudget bounds the histories of all channels together in
	// memory mode, in bytes counted as for HistoryBytes plus about 2 KB
	// for each channel that is alive only for its history. Past it, the
	// oldest events of all channels are evicted first (see the package
	// documentation). Zero means 256 MiB; negative means no budget.
	HistoryBudget int64

	// PublishPatience bounds how long a memory-mode publish waits for its
	// channel actor's answer: between PublishPatience and twice it, then
	// the publish returns an error wrapping [ErrOutcomeUnknown] (504 at the
	// HTTP edge). A channel actor answers in microseconds; one that does
	// not has failed with the publish in its mailbox, or is so far behind
	// that an answer serves the publisher better. Zero means 5s; negative
	// waits until the publish's context ends. Cluster mode has the
	// relay's own bounds.
	PublishPatience time.Duration

	// Cluster, when set, makes the hub deliver only what [Hub.Deliver] hands
	// it (a relay fed by Redis) and replay from Cluster instead of an
	// in-memory history; [Hub.Publish] then publishes through Cluster.
	Cluster Cluster

	// Observer is told about streams, flushes and drops, for metrics; one
	// that also implements [HistoryObserver] is told about history
	// evictions and bytes. Nil observes nothing.
	Observer Observer
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.FlushGap == 0 {
		c.FlushGap = 20 * time.Millisecond
	}
	if c.MaxQueueFrames == 0 {
		c.MaxQueueFrames = 1000
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = 1 << 20
	}
	if c.History == 0 {
		c.History = 1000
	}
	if c.HistoryTTL == 0 {
		c.HistoryTTL = 10 * time.Minute
	}
	if c.HistoryBytes == 0 {
		c.HistoryBytes = 4 << 20
	}
	if c.HistoryBudget == 0 {
		c.HistoryBudget = 256 << 20
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.PublishPatience == 0 {
		c.PublishPatience = 5 * time.Second
	}
	return c
}
