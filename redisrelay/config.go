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
)

// Config configures a [Relay]. Only URL (or Options) is required.
type Config struct {
	// URL locates Redis: redis://[user:password@]host:port/db, rediss://
	// for TLS, or unix://path. It is used when Options is nil.
	URL string

	// Options configures the Redis connections instead of URL. The relay
	// copies it and fills its own defaults into the zero fields (see
	// [Relay] for the fail-fast timeouts).
	Options *redis.Options

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

func (c Config) withDefaults() (Config, *redis.Options, error) {
	var opt *redis.Options
	switch {
	case c.Options != nil:
		o := *c.Options
		opt = &o
	case c.URL != "":
		o, err := redis.ParseURL(c.URL)
		if err != nil {
			return c, nil, fmt.Errorf("redisrelay: Redis URL: %w", err)
		}
		opt = o
	default:
		return c, nil, errors.New("redisrelay: Config needs URL or Options")
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = defaultDialTimeout
	}
	if opt.DialerRetries == 0 {
		opt.DialerRetries = 1
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = defaultIOTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = defaultIOTimeout
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = defaultIOTimeout
	}
	if opt.MaxRetries == 0 {
		// A retried publish could run twice: an event is either known to
		// be accepted or refused, and the caller decides.
		opt.MaxRetries = -1
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
	dial := opt.Dialer
	if dial == nil {
		dial = redis.NewDialer(opt)
	}
	opt.Dialer = trackDialer(dial)
	return c, opt, nil
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
	cfg     Config
	client  *redis.Client // publish and replay
	sub     *redis.Client // the pattern subscription
	pattern string        // PREFIX:*, glob characters escaped
	head    string        // PREFIX:
	hist    string        // PREFIX:history:

	malformed atomic.Uint64
	oversize  atomic.Uint64 // events the sink refused as too large (see checker)
	state     atomic.Pointer[linkState]
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
	refused  atomic.Pointer[error]
	refusals refusalLog

	replayObs replayObs // set by Observe

	mu      sync.Mutex // guards what Start and Shutdown change
	ps      *redis.PubSub
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
	cfg, opt, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Relay{
		cfg:     cfg,
		client:  redis.NewClient(opt),
		pattern: escapeGlob(cfg.Prefix) + ":*",
		head:    cfg.Prefix + ":",
		hist:    cfg.Prefix + ":history:",
	}
	subOpt := *opt
	r.sub = redis.NewClient(&subOpt)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.state.Store(&linkState{err: errNotStarted})
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
func (r *Relay) StreamKey(channel string) string { return r.hist + channel }

// PubSubChannel is the Redis pub/sub channel that carries channel's events.
func (r *Relay) PubSubChannel(channel string) string { return r.head + channel }

// Malformed counts the envelopes refused since the relay started.
func (r *Relay) Malformed() uint64 { return r.malformed.Load() }
