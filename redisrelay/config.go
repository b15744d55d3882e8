package redisrelay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/squall-sse/squall/internal/tracing"
)

// Config configures a [Relay]. Only URL (or Options, or Client) is required.
type Config struct {
	// URL locates Redis. One Redis: redis://[user:password@]host:port/db,
	// rediss:// for TLS, or unix://path. A Redis Cluster:
	// redis+cluster://[user:password@]host:port,host:port (rediss+cluster://
	// for TLS), or redis:// with several hosts; the hosts are seeds, any
	// reachable one finds the rest. With SentinelMaster set, the hosts are
	// Sentinels. Query options are go-redis's (ParseURL, ParseClusterURL,
	// ParseFailoverURL). It is used when Options and Client are nil.
	URL string

	// SentinelMaster is the name of the master that the Sentinels of URL
	// watch: the relay follows it through failovers.
	SentinelMaster string

	// Options configures a single Redis instead of URL. The relay copies it
	// and fills its own defaults into the zero fields (see [Relay] for the
	// fail-fast timeouts).
	Options *redis.Options

	// Client, when set, is used instead of URL and Options: an embedder's
	// own client, single, Sentinel (a failover client) or Cluster
	// (*redis.ClusterClient). The relay neither changes nor closes it, so
	// its timeouts are the embedder's (publishes are still sent once: the
	// relay marks them not to be retried).
	Client redis.UniversalClient

	// Interest chooses what the relay subscribes to: [InterestChannels]
	// (the default) or [InterestAll].
	Interest Interest

	// ShardedPubSub, on a Redis Cluster, carries events with SPUBLISH and
	// SSUBSCRIBE, so that each event travels only within its slot's shard.
	// Off (the default, the compatibility mode), events go with classic
	// PUBLISH, which the cluster bus copies to every node: Python SDK
	// producers (PUBLISH PREFIX:C) and subscribers (PSUBSCRIBE PREFIX:*)
	// keep working, at the price of every node carrying every event. It
	// changes nothing on a single Redis, where classic pub/sub is already
	// compatible and costs nothing extra. Every node must agree.
	ShardedPubSub bool

	// Partitions is the number of hash tags a Redis Cluster spreads the
	// channels over (see the package doc); zero means 16. Every node must
	// use the same. Ignored on a single Redis.
	Partitions int

	// Prefix names the Redis pub/sub channels, PREFIX:CHANNEL, and the
	// history streams, PREFIX:history:CHANNEL. Empty means "sse", the Python
	// SDK's default, so both read and write the same channels.
	Prefix string

	// History is how many events each channel keeps in Redis for
	// Last-Event-ID resume. Zero means 1000; negative disables history
	// (events are then ids only, delivered live, never replayed).
	History int

	// HistoryTTL is how long a kept event stays replayable, and how long an
	// idle channel's stream survives. Zero means 10m; negative means events
	// expire only by count and streams never expire.
	HistoryTTL time.Duration

	// Logger gets connection state changes (at Info when subscribed, Warn
	// when down) and, at most once per LogInterval, malformed envelopes.
	// Nil discards.
	Logger *slog.Logger

	// PingInterval is how long the subscription may stay silent before the
	// relay pings Redis; MaxMissedPongs unanswered pings in a row declare
	// it down (a hung Redis sends no error). Zero means 1s.
	PingInterval time.Duration

	// MaxMissedPongs: see PingInterval. Zero means 3.
	MaxMissedPongs int

	// LogInterval is the least time between two logs of malformed
	// envelopes, and between two logs of refused publishes. Zero means 10s.
	LogInterval time.Duration

	// IdempotencyWindow is how long an idempotency key given to
	// [Relay.PublishOnce] is remembered: a publish with the same key on
	// the same channel within it is not delivered again. Zero or negative
	// means HistoryTTL when that is positive, else 10m.
	IdempotencyWindow time.Duration

	// ProbeInterval is the period of the write probe behind [Relay.Ready]:
	// a tiny script that writes a key, so it meets every refusal a publish
	// would (OOM, READONLY, MISCONF, NOAUTH …) even when nobody publishes.
	// Zero or negative means 500ms.
	ProbeInterval time.Duration

	// TracerProvider, when set, traces publishes and deliveries (see
	// trace.go). Nil: no tracing, at no cost.
	TracerProvider trace.TracerProvider
}

// Defaults of the connections, chosen so that a publish fails within about a
// second when Redis is away rather than hang: the HTTP edge then answers 503.
const (
	defaultDialTimeout = time.Second
	defaultIOTimeout   = time.Second
	// noIDExpiry is how long the id stream of a channel without history
	// (History < 0) survives when HistoryTTL gives no expiry: its ids are
	// time-based, so forgetting the last one after a quiet spell is safe.
	noIDExpiry = 10 * time.Minute
)

func (c Config) withDefaults() (Config, error) {
	if c.Interest != InterestChannels && c.Interest != InterestAll {
		return c, fmt.Errorf("redisrelay: unknown Interest %d", c.Interest)
	}
	if c.Interest == InterestAll && c.ShardedPubSub {
		return c, errors.New("redisrelay: InterestAll needs classic pub/sub: a pattern receives no sharded message")
	}
	if c.Partitions <= 0 {
		c.Partitions = 16
	}
	if c.Partitions > 1024 {
		return c, errors.New("redisrelay: Partitions over 1024")
	}
	if c.Prefix == "" {
		c.Prefix = "sse"
	}
	if c.History == 0 {
		c.History = 1000
	}
	if c.HistoryTTL == 0 {
		c.HistoryTTL = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PingInterval <= 0 {
		c.PingInterval = time.Second
	}
	if c.MaxMissedPongs <= 0 {
		c.MaxMissedPongs = 3
	}
	if c.LogInterval <= 0 {
		c.LogInterval = 10 * time.Second
	}
	if c.IdempotencyWindow <= 0 {
		c.IdempotencyWindow = c.HistoryTTL
		if c.IdempotencyWindow <= 0 {
			c.IdempotencyWindow = 10 * time.Minute
		}
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 500 * time.Millisecond
	}
	return c, nil
}

// Relay connects a hub to Redis. It is three things:
//
//   - a publisher (PublishChecked for the hub, Publish for a Go caller) that appends
//     each event to its channel's history stream and publishes it, in one
//     atomic round trip;
//   - a replayer (its Replay method, an actors.Replayer) that reads the
//     history back for Last-Event-ID resume;
//   - once started, the relay proper: one pattern subscription to
//     PREFIX:* whose messages go to a relay actor that hands each event to
//     the hub.
//
// Publish and Replay use their own client, whose zero timeouts default to
// 1s and whose retries are off, so that with Redis away a publish fails
// fast. Its methods are safe for concurrent use.
type Relay struct {
	cfg       Config
	client    redis.UniversalClient // publish and replay
	sub       redis.UniversalClient // subscriptions: their own pools, so their dials do not trip the client's dial breaker
	ownClient bool                  // built from URL or Options: both closed at Shutdown
	cluster   bool                  // a Redis Cluster: keys carry partition tags
	sharded   bool                  // SPUBLISH and SSUBSCRIBE
	tags      []string              // the partitions' hash tags, on a cluster
	pattern   string                // PREFIX:*, glob characters escaped
	head      string                // PREFIX:
	hist      string                // PREFIX:history:

	links []*link // the subscriptions: one, or one per partition when sharded
	want  interestSet
	clock clockSkew
	// probed is closed once the first write probe has answered or failed:
	// subscriptions wait for it, so that the catch-up of a channel joined
	// at start reads from its join as Redis dates it (see clockSkew)
	// rather than from unknownSkew earlier, which would hand a new stream
	// the last second's events.
	probed chan struct{}

	received      atomic.Uint64 // messages read from the subscriptions
	receivedBytes atomic.Uint64 // their payloads' bytes

	malformed atomic.Uint64
	oversize  atomic.Uint64 // events the sink refused as too large (see checker)
	isStarted atomic.Bool
	// writeErr is why Redis refuses writes, nil while it takes them: set
	// by a failed publish or probe, cleared by a successful one. The
	// subscription can be up while writes are refused (OOM, a read-only
	// replica, a failed save, a password change).
	writeErr atomic.Pointer[error]
	// refused is the refusal (an error reply) of the last write probe, nil
	// when it worked or failed otherwise: while Redis refuses every write,
	// publishes are refused without being sent. Sending them would gain
	// nothing, and an unauthenticated connection is closed by Redis on a
	// command with many arguments, which would lose the answer (a 504
	// where a 503 is certain).
	refused  []atomic.Pointer[error] // per partition on a cluster, else one
	refusals refusalLog

	replayObs replayObs       // set by Observe
	tracer    *tracing.Tracer // nil: tracing off
	// replays holds a token per replay reading Redis (see replayBound).
	replays chan struct{}

	mu      sync.Mutex // guards what Start and Shutdown change
	started bool
	closed  atomic.Bool
	ctx     context.Context // cancelled by Shutdown: ends dials and backoffs
	cancel  context.CancelFunc
	loop    sync.WaitGroup // the receive and probe goroutines
	async   sync.WaitGroup // catch-up fetches
	done    chan struct{}  // closed when Shutdown has finished
	sys     *actor.ActorSystem
	ownSys  bool
	pid     *actor.PID    // the relay actor: the hub's child, or top-level without a hub
	stopped chan struct{} // closed by the relay actor's Stopped

	shutOnce sync.Once
}

// linkState is the subscription's state as the receive loop last saw it.
type linkState struct {
	up  bool
	err error // why it is down
}

var errNotStarted = errors.New("relay not started")

// New returns a Relay. It does not contact Redis: Publish and Replay work at
// once (or fail while Redis is away), and [Relay.Start] begins the
// subscription.
func New(cfg Config) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, own, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	sub := client
	if own {
		if sub, _, err = newClient(cfg); err != nil {
			_ = client.Close()
			return nil, err
		}
	}
	r := &Relay{
		cfg:       cfg,
		client:    client,
		sub:       sub,
		ownClient: own,
		pattern:   escapeGlob(cfg.Prefix) + ":*",
		head:      cfg.Prefix + ":",
		hist:      cfg.Prefix + ":history:",
		tracer:    tracing.New(cfg.TracerProvider),
		replays:   make(chan struct{}, replayBound(client)),
	}
	if _, ok := client.(*redis.ClusterClient); ok {
		r.cluster = true
		r.sharded = cfg.ShardedPubSub
		r.tags = partitionTags(cfg.Partitions)
	}
	r.refused = make([]atomic.Pointer[error], r.parts())
	r.links = make([]*link, 1)
	if r.sharded {
		r.links = make([]*link, len(r.tags))
	}
	for i := range r.links {
		r.links[i] = &link{r: r, part: i, sent: map[string]struct{}{}}
	}
	r.want.init()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.clock.parts = make([]skewPart, r.parts())
	r.probed = make(chan struct{})
	return r, nil
}

// escapeGlob escapes the characters PSUBSCRIBE gives a meaning, so that a
// prefix matches only itself.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Prefix is the configured prefix, with its default filled in.
func (r *Relay) Prefix() string { return r.cfg.Prefix }

// StreamKey is the Redis key of channel's history stream.
func (r *Relay) StreamKey(channel string) string { return r.hist + r.tag(channel) + channel }

// PubSubChannel is the Redis pub/sub channel that carries channel's events:
// PREFIX:C, or PREFIX:{TAG}:C with sharded pub/sub.
func (r *Relay) PubSubChannel(channel string) string {
	if r.sharded {
		return r.head + r.tag(channel) + channel
	}
	return r.head + channel
}

// parts is the number of partitions: 1 on a single Redis.
func (r *Relay) parts() int { return max(len(r.tags), 1) }

// part is channel's partition, 0 on a single Redis.
func (r *Relay) part(channel string) int {
	if !r.cluster {
		return 0
	}
	return partition(channel, len(r.tags))
}

// tag is what goes between a key's kind and the channel name: "{TAG}:" on
// a cluster, so that every key of the channel is in its partition's slot,
// and nothing on a single Redis, whose names are the Python SDK's.
func (r *Relay) tag(channel string) string {
	if !r.cluster {
		return ""
	}
	return "{" + r.tags[partition(channel, len(r.tags))] + "}:"
}

// channelOf is the Squall channel a pub/sub channel carries, or false when
// the name is outside the prefix.
func (r *Relay) channelOf(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, r.head)
	if !ok {
		return "", false
	}
	if r.sharded && strings.HasPrefix(rest, "{") {
		if _, after, ok := strings.Cut(rest, "}:"); ok {
			return after, true
		}
	}
	return rest, true
}

// Ingress is what the relay has read from its subscriptions since it
// started: messages and payload bytes. A node with no stream on a channel
// does not subscribe to it (InterestChannels), so its events are not in
// these counts.
func (r *Relay) Ingress() (messages, bytes uint64) {
	return r.received.Load(), r.receivedBytes.Load()
}

// Malformed counts the envelopes refused since the relay started.
func (r *Relay) Malformed() uint64 { return r.malformed.Load() }
