package actors

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/squall-sse/squall/sse"
)

// Hub is the channel broker: a router actor that owns one channel actor per
// channel, and a connection actor per open stream.
type Hub struct {
	cfg    Config
	sys    *actor.ActorSystem
	ownSys bool
	router *actor.PID
	props  *actor.Props // shared options of connection actors
	beat   *frame       // the heartbeat every channel sends, shared
	hobs   HistoryObserver

	closed   atomic.Bool
	shutOnce sync.Once
	shutDone chan struct{}

	mu      sync.Mutex // guards streams; taken on open and close, never per event
	streams map[*Stream]struct{}

	asyncCtx    context.Context // cancelled on Shutdown, for replay fetches
	asyncCancel context.CancelFunc
	async       sync.WaitGroup
}

// stopStrategy stops a failing actor instead of restarting it with empty
// state; what a stop means for each actor is written on its type.
var stopStrategy = actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })

// New starts a hub.
func New(cfg Config) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{cfg: cfg, sys: cfg.System, streams: map[*Stream]struct{}{}, shutDone: make(chan struct{})}
	if h.sys == nil {
		logger := cfg.Logger
		h.sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
		h.ownSys = true
	}
	h.hobs = nopHistoryObserver{}
	if o, ok := cfg.Observer.(HistoryObserver); ok {
		h.hobs = o
	}
	h.beat = &frame{b: sse.Keepalive, beat: true}
	if cfg.HeartbeatEvent != "" {
		b, err := sse.AppendEvent(nil, sse.Event{Event: cfg.HeartbeatEvent})
		if err != nil {
			panic("actors: Config.HeartbeatEvent: " + err.Error())
		}
		h.beat.b = b
	}
	h.asyncCtx, h.asyncCancel = context.WithCancel(context.Background())
	h.props = actor.PropsFromProducer(nil, actor.WithMailbox(unboundedMailbox), actor.WithGuardian(stopStrategy))
	routerProps := actor.PropsFromProducer(func() actor.Actor { return &router{hub: h, channels: map[string]*routed{}} },
		actor.WithMailbox(unboundedMailbox), actor.WithGuardian(stopStrategy), actor.WithSupervisor(stopStrategy))
	h.router = h.sys.Root.Spawn(routerProps)
	return h
}

// System is the actor system the hub runs in.
func (h *Hub) System() *actor.ActorSystem { return h.sys }

// Config returns the hub's configuration with defaults filled in.
func (h *Hub) Config() Config { return h.cfg }

// Publish assigns the event an id (unless ev.ID is set), keeps it in the
// channel's history and sends it to every subscriber of channel, returning the
// id. It waits only for the channel actor to take the event (in cluster
// mode, for Redis to take it), never for a client. Callers validate the
// channel name. It is [Hub.PublishOnce] without an idempotency key.
func (h *Hub) Publish(ctx context.Context, channel string, ev sse.Event) (string, error) {
	p, err := h.PublishOnce(ctx, channel, ev, "")
	return p.ID, err
}

// PublishOnce is [Hub.Publish] with an idempotency key: when key is not
// empty and an event with the same key was taken on channel within the
// retention window, the event is not delivered again and the answer is the
// earlier event's id with Duplicate set. An error wrapping
// [ErrOutcomeUnknown] means the event may or may not have been taken; any
// other error means it was not. An event that [Hub.CheckEvent] refuses is
// never taken: the error wraps [ErrInvalidPublish] or [ErrEventTooLarge].
func (h *Hub) PublishOnce(ctx context.Context, channel string, ev sse.Event, key string) (Published, error) {
	if err := h.CheckEvent(ev); err != nil {
		return Published{}, err
	}
	if h.cfg.Cluster != nil {
		if h.closed.Load() {
			return Published{}, ErrClosed
		}
		return h.cfg.Cluster.PublishOnce(ctx, channel, ev, key)
	}
	return h.request(ctx, h.router, &publishMsg{channel: channel, ev: ev, key: key})
}

var replies = sync.Pool{New: func() any { return make(chan publishReply, 1) }}

func (h *Hub) request(ctx context.Context, to *actor.PID, m *publishMsg) (Published, error) {
	if h.closed.Load() {
		return Published{}, ErrClosed
	}
	m.reply = replies.Get().(chan publishReply)
	h.sys.Root.Send(to, m)
	select {
	case r := <-m.reply:
		replies.Put(m.reply)
		return Published{ID: r.id, Duplicate: r.duplicate}, r.err
	case <-ctx.Done():
		// The reply chan is dropped: the actor may still answer into it,
		// and may have taken the event.
		return Published{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-h.shutDone:
		return Published{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ErrClosed)
	}
}

// Open starts a stream on w, subscribed to opts.Channels. The caller has set
// the response headers (and may have called WriteHeader, unflushed); the
// stream's first flush sends them once its subscriptions are queued, so a
// client that sees them receives every later publish. The caller must call
// [Stream.Wait] before its handler returns.
func (h *Hub) Open(w http.ResponseWriter, opts StreamOptions) (*Stream, error) {
	if len(opts.Channels) == 0 {
		panic("actors: Open without channels")
	}
	s, err := h.spawn(w, opts.Channels, nil)
	if err != nil {
		return nil, err
	}
	points := resumePoints(opts.LastEventID, opts.Channels)
	for _, ch := range opts.Channels {
		id, ok := points[ch]
		h.sys.Root.Send(h.router, &joinMsg{channel: ch, s: s, lastID: id, hasLastID: ok})
	}
	// The joins are queued at the router ahead of any publish the client
	// can make once it sees the headers, which this first flush sends.
	s.wake(h.sys.Root)
	return s, nil
}

// OpenDirect starts a stream on w that belongs to no channel: the caller
// publishes to it with [Stream.Publish]. This is one EventStream of the
// Python SDK; it still gets heartbeats and the slow-consumer policy.
func (h *Hub) OpenDirect(w http.ResponseWriter) (*Stream, error) {
	ch := newChannelActor(h, "", true, nil)
	private := h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return ch },
		actor.WithMailbox(unboundedMailbox), actor.WithGuardian(stopStrategy)))
	s, err := h.spawn(w, nil, private)
	if err != nil {
		h.sys.Root.Stop(private)
		return nil, err
	}
	h.sys.Root.Send(private, &joinMsg{s: s})
	s.wake(h.sys.Root)
	return s, nil
}

func (h *Hub) spawn(w http.ResponseWriter, channels []string, private *actor.PID) (*Stream, error) {
	s := &Stream{hub: h, w: w, rc: http.NewResponseController(w), channels: channels, private: private, done: make(chan struct{})}
	c := newConnActor(s, &h.cfg)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed.Load() {
		return nil, ErrClosed
	}
	// Spawned under the lock, so Drain never sees a stream without its pid.
	s.pid = h.sys.Root.Spawn(h.props.Clone(actor.WithProducer(func() actor.Actor { return c })))
	h.streams[s] = struct{}{}
	h.cfg.Observer.StreamOpened()
	return s, nil
}

func (h *Hub) streamClosed(s *Stream) {
	h.mu.Lock()
	delete(h.streams, s)
	h.mu.Unlock()
}

// OpenStreams is the number of streams not yet closed.
func (h *Hub) OpenStreams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

// Channels is the number of live channel actors.
func (h *Hub) Channels() int {
	reply := make(chan int, 1)
	h.sys.Root.Send(h.router, &countMsg{reply: reply})
	select {
	case n := <-reply:
		return n
	case <-h.shutDone:
		return 0
	}
}

// goAsync runs f on a goroutine the hub owns and waits for on Shutdown.
func (h *Hub) goAsync(f func(ctx context.Context)) {
	h.async.Add(1)
	go func() {
		defer h.async.Done()
		f(h.asyncCtx)
	}()
}

// Drain closes every open stream, each after a "retry:" hint of retry plus up
// to as much again of random jitter so that clients do not all come back at
// once, and waits for them to end or ctx to expire. New streams and publishes
// are refused from the start.
func (h *Hub) Drain(ctx context.Context, retry time.Duration) error {
	h.mu.Lock()
	h.closed.Store(true)
	open := make([]*Stream, 0, len(h.streams))
	for s := range h.streams {
		open = append(open, s)
	}
	h.mu.Unlock()
	for _, s := range open {
		var final []byte
		if retry > 0 {
			final = sse.AppendRetry(nil, retry+rand.N(retry+1))
		}
		h.sys.Root.Send(s.pid, &closeMsg{reason: Shutdown, final: final})
	}
	for _, s := range open {
		select {
		case <-s.done:
		case <-ctx.Done():
			// Streams stuck in a write end without another write.
			for _, s := range open {
				s.kill(Shutdown)
			}
			return ctx.Err()
		}
	}
	return nil
}

// Shutdown drains the open streams (see [Hub.Drain], with a 1s retry hint),
// then stops the hub's actors and, if the hub created it, its actor system.
// It is idempotent; after ctx expires it returns ctx.Err() and the rest of
// the shutdown carries on without waiting for stuck writes.
func (h *Hub) Shutdown(ctx context.Context) error {
	err := h.Drain(ctx, time.Second)
	h.shutOnce.Do(func() {
		close(h.shutDone)
		h.asyncCancel()
		h.async.Wait()
		// The router stops its channels and waits for each to be gone
		// before it stops itself; stopping it directly would send Stop to
		// any channel that had just stopped on its own.
		stopped := make(chan struct{})
		h.sys.Root.Send(h.router, &closeChannels{done: stopped})
		select {
		case <-stopped:
			h.sys.Root.Stop(h.router)
		case <-ctx.Done():
			err = ctx.Err()
		}
		if h.ownSys {
			h.sys.Shutdown()
		}
	})
	return err
}

// router owns the map from channel name to channel actor. Every message for
// a channel goes through it, which is what makes stopping an idle channel
// safe: the router counts what it forwarded and stops a channel only when the
// channel has handled all of it.
type router struct {
	hub      *Hub
	channels map[string]*routed
	closed   chan struct{} // set by closeChannels: closed once no child is left
	// budget is the history budget's actor, a child spawned with the first
	// channel in memory mode when a budget is set.
	budget *actor.PID
}

// closeChannels asks the router to stop every channel actor and close done
// once all of them are gone.
type closeChannels struct{ done chan struct{} }

func (*closeChannels) IgnoreDeadLetterLogging() {}

type routed struct {
	pid *actor.PID
	fwd uint64
}

func (r *router) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *publishMsg:
		r.forward(ctx, m.channel, m, true)
	case *deliverMsg:
		// Nobody here listens and history lives in Redis: nothing to do.
		r.forward(ctx, m.channel, m, false)
	case *joinMsg:
		r.forward(ctx, m.channel, m, true)
	case *leaveMsg:
		r.forward(ctx, m.channel, m, false)
	case *idleMsg:
		if c, ok := r.channels[m.channel]; ok && c.fwd == m.seen {
			delete(r.channels, m.channel)
			ctx.Stop(c.pid)
			r.hub.cfg.Observer.ChannelsChanged(len(r.channels))
		}
	case *countMsg:
		m.reply <- len(r.channels)
	case *closeChannels:
		r.closed = m.done
		for name, c := range r.channels {
			ctx.Stop(c.pid)
			delete(r.channels, name)
		}
		if r.budget != nil {
			ctx.Stop(r.budget)
			r.budget = nil
		}
		r.closeIfEmpty(ctx)
	case *actor.Terminated:
		r.closeIfEmpty(ctx)
	}
}

func (r *router) closeIfEmpty(ctx actor.Context) {
	if r.closed != nil && len(ctx.Children()) == 0 {
		close(r.closed)
		r.closed = nil
	}
}

func (r *router) forward(ctx actor.Context, name string, msg any, create bool) {
	c, ok := r.channels[name]
	if !ok {
		if !create {
			return
		}
		cfg := &r.hub.cfg
		if r.budget == nil && cfg.Cluster == nil && cfg.History > 0 && cfg.HistoryBudget > 0 && r.closed == nil {
			b := newBudgetActor(cfg.HistoryBudget, r.hub.hobs)
			r.budget = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return b }, actor.WithMailbox(unboundedMailbox)))
		}
		ch := newChannelActor(r.hub, name, false, r.budget)
		pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return ch }, actor.WithMailbox(unboundedMailbox)))
		c = &routed{pid: pid}
		r.channels[name] = c
		r.hub.cfg.Observer.ChannelsChanged(len(r.channels))
	}
	c.fwd++
	ctx.Send(c.pid, msg)
}
