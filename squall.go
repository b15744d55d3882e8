package squall

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// Config configures a [Broker]. The zero value is an in-memory broker with
// the binary's defaults, auth off and no demo page.
type Config struct {
	// RedisURL turns on cluster mode: redis://[user:password@]host:port/db,
	// rediss:// for TLS, or unix://path. Empty (with Redis nil) runs in
	// memory.
	RedisURL string
	// Redis configures the Redis connections instead of RedisURL (a custom
	// TLS config, a dialer). The broker copies it.
	Redis *redis.Options
	// RedisClient, when set, is used instead of RedisURL and Redis: your
	// own single, Sentinel (failover) or Cluster client. The broker does
	// not close it.
	RedisClient redis.UniversalClient
	// RedisSentinelMaster is the master name the Sentinels of RedisURL
	// watch (RedisURL then lists the Sentinels).
	RedisSentinelMaster string
	// RedisSharded carries events over sharded pub/sub on a Redis Cluster
	// (see docs/scaling.md for what it costs Python SDK peers).
	RedisSharded bool
	// RedisPrefix names the Redis channels (PREFIX:CHANNEL) and history
	// streams; the same on every node. Empty means "sse", the Python SDK's.
	RedisPrefix string
	// RedisInterest is what the node subscribes to: the channels its
	// streams are on (the zero value) or every event with one pattern
	// (redisrelay.InterestAll); see docs/scaling.md.
	RedisInterest redisrelay.Interest

	// History is how many events each channel keeps for Last-Event-ID
	// resume, in memory or in Redis. Zero means 1000; negative disables
	// history.
	History int
	// HistoryTTL is how long a kept event stays replayable. Zero means 10m;
	// negative keeps events by count only.
	HistoryTTL time.Duration

	// Auth, when set, requires a token on /events and /publish (HS256 JWT,
	// see [httpedge.Claims]). Nil serves everyone.
	Auth *httpedge.Auth
	// CORSOrigins lists the origins whose pages may call the API from a
	// browser (see httpedge.Config). Empty: same-origin pages only.
	CORSOrigins []string
	// Heartbeat is the idle time before a ": keepalive" comment. Zero
	// means 15s; negative disables heartbeats.
	Heartbeat time.Duration
	// HeartbeatEvent sends heartbeats as this named event instead of a
	// comment (see actors.Config.HeartbeatEvent). Empty: a comment.
	HeartbeatEvent string
	// WriteTimeout bounds every write to a client; a stream whose write
	// does not complete in it (up to a quarter more) is closed. Zero
	// means 10s.
	WriteTimeout time.Duration
	// FlushGap and FixedFlushGap say how a stream that falls behind its
	// events coalesces them (see actors.Config). Zero means 20ms;
	// negative writes every wake-up at once.
	FlushGap      time.Duration
	FixedFlushGap bool
	// MaxQueueFrames and MaxQueueBytes bound what waits for one stream
	// before Overflow applies. Zero means 1000 frames and 1 MiB; negative
	// means no bound.
	MaxQueueFrames int
	MaxQueueBytes  int
	// Overflow is the slow-consumer policy. The zero value disconnects.
	Overflow actors.Overflow
	// HistoryBytes bounds each channel's history in memory mode, and
	// HistoryBudget all channels' together. Zero means 4 MiB and 256 MiB;
	// negative means no bound.
	HistoryBytes  int
	HistoryBudget int64
	// PublishPatience bounds a memory-mode publish's wait for its channel
	// (see actors.Config.PublishPatience). Zero means 5s.
	PublishPatience time.Duration
	// MaxBody is the largest publish body, in bytes. Zero means 1 MiB;
	// negative means no limit.
	MaxBody int64
	// MaxStreams bounds the streams open at once (503 above). Zero means
	// httpedge.DefaultMaxStreams; negative means no limit.
	MaxStreams int
	// MaxStreamsPerIP bounds the streams open at once per client address
	// (429 above). Zero means no limit.
	MaxStreamsPerIP int
	// MaxChannels is how many channels one stream may join. Zero means 16.
	MaxChannels int
	// TrustProxy takes the client address from the last X-Forwarded-For
	// hop: only behind a proxy that appends it.
	TrustProxy bool
	// Demo serves the demo page at the mount point's root.
	Demo bool
	// AdminSecret, when set, serves the admin API (presence, disconnect)
	// under admin/ to requests bearing it; see docs/admin.md. In cluster
	// mode its answers cover every node.
	AdminSecret string
	// AdminInterval is how often each node reports its channel counts to
	// Redis for the cluster-wide admin API: answers are at most 2
	// intervals old. Zero means 5s. Memory mode ignores it.
	AdminInterval time.Duration
	// PublishLimits bound publishes per token subject and per address.
	// The zero value limits nothing.
	PublishLimits httpedge.PublishLimits

	// TracerProvider, when set, traces publishes: the POST publish server
	// span, the Redis publish in cluster mode, and each event's fanout and
	// first delivery (see docs/observability.md, "Tracing"). Nil: no
	// tracing, at no cost. The broker does not shut it down.
	TracerProvider trace.TracerProvider

	// Logger gets the broker's logs. Nil discards them.
	Logger *slog.Logger
	// System is a protoactor actor system to run in. Nil means the broker
	// creates its own, quiet one; a system passed in is never shut down.
	System *actor.ActorSystem
}

// Broker is a working Squall hub: its HTTP API as an [http.Handler], its
// hub and, in cluster mode, the Redis relay that feeds it.
type Broker struct {
	hub     *actors.Hub
	edge    *httpedge.Server
	relay   *redisrelay.Relay // nil in memory mode
	admin   *redisrelay.Admin // nil in memory mode or without AdminSecret
	metrics *httpedge.Metrics

	closed   atomic.Bool
	shutOnce sync.Once
	shutErr  error
}

// ErrClosed is what [Broker.Ready] returns once Shutdown has begun.
var ErrClosed = errors.New("squall: broker shut down")

// drainRetry is the base reconnect hint streams get at Shutdown; each gets
// up to as much again of jitter, so clients do not come back in step.
const drainRetry = time.Second

// New builds a broker from cfg: in memory, or in cluster mode when
// cfg.RedisURL or cfg.Redis is set, with its relay already started. It
// returns at once; [Broker.Ready] (and GET readyz) reports when the relay
// is subscribed. It fails on a malformed Redis URL; a Redis that is down
// only makes the broker not ready until it comes back.
func New(cfg Config) (*Broker, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	metrics := httpedge.NewMetrics()
	hcfg := actors.Config{System: cfg.System, Logger: log, Heartbeat: cfg.Heartbeat, HeartbeatEvent: cfg.HeartbeatEvent,
		WriteTimeout: cfg.WriteTimeout, FlushGap: cfg.FlushGap, FixedFlushGap: cfg.FixedFlushGap,
		MaxQueueFrames: cfg.MaxQueueFrames, MaxQueueBytes: cfg.MaxQueueBytes, Overflow: cfg.Overflow,
		History: cfg.History, HistoryTTL: cfg.HistoryTTL, HistoryBytes: cfg.HistoryBytes, HistoryBudget: cfg.HistoryBudget,
		PublishPatience: cfg.PublishPatience, Observer: metrics}
	if cfg.HeartbeatEvent != "" {
		// actors.New panics on a name the wire cannot carry: here it is
		// the caller's error.
		if err := sse.ValidName(cfg.HeartbeatEvent); err != nil {
			return nil, fmt.Errorf("squall: HeartbeatEvent: %w", err)
		}
	}
	relay, err := newRelay(cfg, log)
	if err != nil {
		return nil, err
	}
	if relay != nil {
		hcfg.Cluster = relay
	}
	hub := actors.New(hcfg)
	ecfg := httpedge.Config{Hub: hub, Logger: log, MaxBody: cfg.MaxBody, MaxStreams: cfg.MaxStreams,
		MaxStreamsPerIP: cfg.MaxStreamsPerIP, MaxChannels: cfg.MaxChannels, TrustProxy: cfg.TrustProxy,
		Auth: cfg.Auth, CORSOrigins: cfg.CORSOrigins, Metrics: metrics, Demo: cfg.Demo,
		AdminSecret: cfg.AdminSecret, PublishLimits: cfg.PublishLimits, TracerProvider: cfg.TracerProvider}
	var admin *redisrelay.Admin
	if relay != nil {
		startRelay(relay, hub, &ecfg, metrics)
		if cfg.AdminSecret != "" {
			if admin, err = redisrelay.NewAdmin(relay, hub, redisrelay.AdminConfig{Interval: cfg.AdminInterval, Logger: log}); err != nil {
				_ = hub.Shutdown(context.Background())
				_ = relay.Close()
				return nil, err
			}
			admin.Observe(metrics.Registry())
			admin.Start()
			ecfg.ClusterAdmin = admin
		}
	}
	return &Broker{hub: hub, edge: httpedge.New(ecfg), relay: relay, admin: admin, metrics: metrics}, nil
}

// newRelay is the only code that knows redisrelay.Config: nil in memory
// mode. History settings have one convention (zero: default; negative:
// off), the same in actors.Config and redisrelay.Config, so they pass as
// they are.
func newRelay(cfg Config, log *slog.Logger) (*redisrelay.Relay, error) {
	if cfg.RedisURL == "" && cfg.Redis == nil && cfg.RedisClient == nil {
		return nil, nil
	}
	return redisrelay.New(redisrelay.Config{URL: cfg.RedisURL, Options: cfg.Redis, Client: cfg.RedisClient,
		SentinelMaster: cfg.RedisSentinelMaster, ShardedPubSub: cfg.RedisSharded, Prefix: cfg.RedisPrefix, Interest: cfg.RedisInterest,
		History: cfg.History, HistoryTTL: cfg.HistoryTTL, Logger: log, TracerProvider: cfg.TracerProvider})
}

// startRelay joins the two halves: the hub publishes and replays through
// the relay (its Cluster), the relay delivers into the hub (its sink, which
// adopts the relay actor), and readiness and the relay's drop counters
// reach /readyz and /metrics.
func startRelay(relay *redisrelay.Relay, hub *actors.Hub, ecfg *httpedge.Config, m *httpedge.Metrics) {
	relay.Observe(m.Registry()) // before the relay sends anything
	relay.Start(hub.System(), hub)
	ecfg.Ready = relay.Ready
	ecfg.Dependencies = []httpedge.Dependency{{Name: "redis_subscription", Ready: relay.SubscriptionReady}, {Name: "redis_publish", Ready: relay.PublishReady}}
	m.ObserveDependencies(ecfg.Dependencies)
	m.SetRelayReady(relay.Ready)
	m.SetRelayDrops(relay.Malformed, relay.Oversize)
}

// ServeHTTP serves the API: GET events, POST publish, GET healthz, readyz
// and metrics, and the demo page. Mounted on an [http.ServeMux] under a
// subtree pattern such as "/sse/", it serves /sse/events and so on: it
// strips the pattern's path itself. Behind another router, wrap it in
// http.StripPrefix("/sse", broker).
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := mountPrefix(r.Pattern); p != "" && strings.HasPrefix(r.URL.Path, p+"/") {
		http.StripPrefix(p, b.edge).ServeHTTP(w, r)
		return
	}
	b.edge.ServeHTTP(w, r)
}

// mountPrefix returns the path a ServeMux subtree pattern ("/sse/",
// "GET example.com/sse/") mounts at, without its final slash: "" for the
// root, for an exact pattern and for one with wildcards, whose matched
// prefix the pattern alone does not give.
func mountPrefix(pattern string) string {
	if _, rest, ok := strings.Cut(pattern, " "); ok {
		pattern = strings.TrimLeft(rest, " \t")
	}
	i := strings.IndexByte(pattern, '/')
	if i < 0 {
		return ""
	}
	path := pattern[i:]
	if !strings.HasSuffix(path, "/") || strings.Contains(path, "{") {
		return ""
	}
	return strings.TrimSuffix(path, "/")
}

// Publish sends data on channel from Go, as POST publish does without its
// auth check, and returns the event's id. data goes raw when it is a
// string or []byte, as compact JSON otherwise; opts set the event name, id
// and retry hint.
func (b *Broker) Publish(ctx context.Context, channel string, data any, opts ...sse.Option) (string, error) {
	ev, err := sse.New(data, opts...)
	if err != nil {
		return "", err
	}
	return b.hub.Publish(ctx, channel, ev)
}

// Ready reports whether the broker can take and deliver events: nil in
// memory mode until Shutdown, and in cluster mode once the relay is
// subscribed and Redis takes writes; [ErrClosed] from Shutdown on.
func (b *Broker) Ready() error {
	if b.closed.Load() {
		return ErrClosed
	}
	if b.relay != nil {
		return b.relay.Ready()
	}
	return nil
}

// readyPoll is how often WaitReady looks: the relay reports its state
// without a signal to wait on.
const readyPoll = 10 * time.Millisecond

// WaitReady returns nil once [Broker.Ready] does, or ctx.Err() with the
// last reason: for a program that must not take traffic (or a test that
// must not publish) before the relay is subscribed.
func (b *Broker) WaitReady(ctx context.Context) error {
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		err := b.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Drain turns readyz 503, refuses new streams, and closes the open ones
// with a jittered "retry:" hint, in batches spread over spread: the first
// step of [Broker.Shutdown]. A program that runs its own http.Server calls
// Drain, then the server's Shutdown (which waits for publishes in
// flight), then Shutdown, which stops the hub and the relay.
func (b *Broker) Drain(ctx context.Context, spread time.Duration) error {
	return b.edge.Drain(ctx, spread, drainRetry)
}

// Handle mounts an extra handler beside the API (pprof, an application's
// own endpoints), under the broker's mount point.
func (b *Broker) Handle(pattern string, h http.Handler) { b.edge.Handle(pattern, h) }

// ObserveConns serves a connection limiter's counts among the broker's
// metrics (squall_connections_*): for a program that bounds connections
// with [httpedge.NewConnLimiter].
func (b *Broker) ObserveConns(l *httpedge.ConnLimiter) { b.metrics.ObserveConns(l) }

// Hub is the broker's hub, for what the broker does not wrap (opening a
// stream from a handler of your own with [actors.Hub.Open]).
func (b *Broker) Hub() *actors.Hub { return b.hub }

// Registry holds the broker's Prometheus metrics (served at metrics), to
// gather into a registry of your own.
func (b *Broker) Registry() *prometheus.Registry { return b.metrics.Registry() }

// Shutdown stops the broker in order: readyz turns 503 and new streams are
// refused; open streams get a jittered "retry:" hint and close (spread
// over the first half of ctx's deadline, if it has one); the hub stops;
// then the relay, so publishes in flight during the drain still reach
// Redis. Call it before your http.Server's Shutdown, which would otherwise
// wait on the streams. It is idempotent and returns ctx.Err() when ctx
// ends first; the rest of the shutdown then carries on without waiting for
// stuck writes.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.shutOnce.Do(func() {
		b.closed.Store(true)
		var spread time.Duration
		if d, ok := ctx.Deadline(); ok {
			spread = time.Until(d) / 2
		}
		errs := []error{b.edge.Drain(ctx, spread, drainRetry), b.hub.Shutdown(ctx)}
		if b.admin != nil {
			errs = append(errs, b.admin.Close()) // before the relay closes its clients
		}
		if b.relay != nil {
			errs = append(errs, b.relay.Shutdown(ctx))
		}
		if err := errors.Join(errs...); err != nil {
			b.shutErr = cmp.Or(ctx.Err(), err)
		}
	})
	return b.shutErr
}
