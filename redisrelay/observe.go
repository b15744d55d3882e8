package redisrelay

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/actors"
)

// Observe registers the relay's series on reg and starts timing what it
// sends to Redis:
//
//	squall_redis_command_duration_seconds{command,result}  histogram: each command (or pipeline) of the publish and replay client, result ok or error
//	squall_replay_page_duration_seconds                     histogram: one page of a resume read from Redis's history
//	squall_replay_page_events                               histogram: events in that page
//
// The command label is the relay's own commands (evalsha, eval, script,
// ping, …: a short list fixed by this package, never a key or channel
// name); a pipeline is "pipeline". A nil reply (redis.Nil) is ok. Call it
// once, before Start and the first Publish: go-redis hooks must not be
// added while commands run.
func (r *Relay) Observe(reg prometheus.Registerer) {
	cmd := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "squall_redis_command_duration_seconds",
		Help:    "Redis commands of the publish and replay client, by command and result (ok, error), from send to reply.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"command", "result"})
	page := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "squall_replay_page_duration_seconds",
		Help:    "Time to read one page of a resume from Redis's history (the script's round trip and parsing).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	size := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "squall_replay_page_events",
		Help:    "Events in one page of a resume read from Redis's history.",
		Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
	})
	// What a node reads from Redis is what per-channel interest saves
	// (docs/scaling.md): with it, only events of channels this node has a
	// stream on.
	messages := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "squall_relay_received_messages_total",
		Help: "Messages read from the Redis subscriptions (with per-channel interest, only those of channels with a stream on this node).",
	}, func() float64 { m, _ := r.Ingress(); return float64(m) })
	bytes := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "squall_relay_received_bytes_total",
		Help: "Payload bytes of the messages read from the Redis subscriptions.",
	}, func() float64 { _, b := r.Ingress(); return float64(b) })
	reg.MustRegister(cmd, page, size, messages, bytes)
	r.client.AddHook(commandTimer{cmd})
	r.replayObs.Store(&replayObserver{page, size})
}

type replayObserver struct {
	duration, events prometheus.Observer
}

// timeReplay starts timing one page of a replay; the returned func records
// the page once read.
func (r *Relay) timeReplay() func(actors.Replay) {
	o := r.replayObs.Load()
	if o == nil {
		return func(actors.Replay) {}
	}
	start := time.Now()
	return func(page actors.Replay) {
		o.duration.Observe(time.Since(start).Seconds())
		o.events.Observe(float64(len(page.Events)))
	}
}

// replayObs is set by Observe; nil records nothing.
type replayObs = atomic.Pointer[replayObserver]

// commandTimer is a go-redis hook that times every command.
type commandTimer struct{ h *prometheus.HistogramVec }

func (commandTimer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c commandTimer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		c.h.WithLabelValues(strings.ToLower(cmd.Name()), result(err)).Observe(time.Since(start).Seconds())
		return err
	}
}

func (c commandTimer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		c.h.WithLabelValues("pipeline", result(err)).Observe(time.Since(start).Seconds())
		return err
	}
}

func result(err error) string {
	if err == nil || errors.Is(err, redis.Nil) {
		return "ok"
	}
	return "error"
}

// SubscriptionReady is nil while the relay's subscriptions are confirmed by
// Redis, and why not otherwise: the relay's half of [Relay.Ready].
func (r *Relay) SubscriptionReady() error {
	if r.closed.Load() {
		return ErrClosed
	}
	return r.subscriptionDown()
}

// PublishReady is nil while Redis takes writes (as the last publish or
// write probe found), and why not otherwise: the publisher's half of
// [Relay.Ready].
func (r *Relay) PublishReady() error {
	if r.closed.Load() {
		return ErrClosed
	}
	if w := r.writeErr.Load(); w != nil {
		return *w
	}
	return nil
}
