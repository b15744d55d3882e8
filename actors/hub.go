package actors

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/squall-sse/squall/sse"
)

// Hub is the channel broker: a router actor that owns one channel actor per
// channel, and a streams supervisor that owns a connection actor per open
// stream (see the package doc for the tree).
type Hub struct {
	cfg     Config
	sys     *actor.ActorSystem
	ownSys  bool
	top     *actor.PID // the hub actor, the tree's root
	router  *actor.PID
	streams *actor.PID   // the streams supervisor
	props   *actor.Props // shared options of connection actors
	beat    *frame       // the heartbeat every channel sends, shared
	hobs    HistoryObserver

	// chans is the router's map from channel name to channel actor,
	// published so that a publish or a join can go straight to the
	// channel actor instead of through the router's mailbox (memory mode;
	// see "Concurrency" in the package doc). Only the router writes it.
	chansMu sync.RWMutex
	chans   map[string]*routed

	closed   atomic.Bool
	shutOnce sync.Once
	shutDone chan struct{}
	patience *patience                 // nil: publishes wait until their context ends
	dead     *eventstream.Subscription // settleDeadLetters
	workers  *workerPool               // run every turn of the hub's actors
	gaps     *gapClock                 // ends its streams' flush gaps

	asyncCtx    context.Context // cancelled on Shutdown, for replay fetches
	asyncCancel context.CancelFunc
	async       sync.WaitGroup
}

// New starts a hub.
func New(cfg Config) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{cfg: cfg, sys: cfg.System, shutDone: make(chan struct{}), chans: map[string]*routed{}, workers: newWorkerPool(), gaps: newGapClock()}
	if cfg.Cluster == nil {
		h.patience = newPatience(cfg.PublishPatience)
	}
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
	// A connection actor supervises a direct stream's own channel.
	h.props = actor.PropsFromProducer(nil, actor.WithMailbox(h.mailboxes), actor.WithSupervisor(stopStrategy))
	top := &hubActor{h: h, started: make(chan struct{}), adopted: map[string]*actor.PID{}}
	h.top = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return top },
		actor.WithMailbox(h.mailboxes), actor.WithGuardian(stopStrategy)))
	<-top.started
	h.dead = h.settleDeadLetters()
	return h
}

// System is the actor system the hub runs in.
func (h *Hub) System() *actor.ActorSystem { return h.sys }

// Config returns the hub's configuration with defaults filled in.
func (h *Hub) Config() Config { return h.cfg }

// Publish assigns the event an id (unless ev.ID is set), keeps it in the
// channel's history and sends it to every subscriber of channel, returning the
// id. It waits only for the channel actor to take the event (in cluster
// mode, for Redis to take it), never for a client. It is [Hub.PublishOnce]
// without an idempotency key.
func (h *Hub) Publish(ctx context.Context, channel string, ev sse.Event) (string, error) {
	p, err := h.PublishOnce(ctx, channel, ev, "")
	return p.ID, err
}

// PublishOnce is [Hub.Publish] with an idempotency key: when key is not
// empty and an event with the same key was taken on channel within the
// retention window, the event is not delivered again and the answer is the
// earlier event's id with Duplicate set. An error wrapping
// [ErrOutcomeUnknown] means the event may or may not have been taken; any
// other error means it was not. An event that [Hub.Check] refuses is
// never taken: the error wraps [ErrInvalidPublish] or [ErrEventTooLarge].
func (h *Hub) PublishOnce(ctx context.Context, channel string, ev sse.Event, key string) (Published, error) {
	c, err := h.Check(channel, ev)
	if err != nil {
		return Published{}, err
	}
	return h.PublishChecked(ctx, c, key)
}

// PublishChecked is [Hub.PublishOnce] for an event already checked by
// [Hub.Check], where it entered (the HTTP edge checks a body once and
// publishes it with this). It is the one way publishes go in, in memory
// mode to the channel's actor and in cluster mode to the [Cluster]. It
// panics if c was not built by this hub's Check.
func (h *Hub) PublishChecked(ctx context.Context, c Checked, key string) (Published, error) {
	h.mustBeMine(c, "PublishChecked")
	// Checked before direct counts the message as sent to the channel,
	// which must then be sent: a count the channel never reaches would
	// keep it from ever stopping for idleness.
	if h.closed.Load() {
		return Published{}, ErrClosed
	}
	if h.cfg.Cluster != nil {
		return h.cfg.Cluster.PublishChecked(ctx, c, key)
	}
	m := &publishMsg{channel: c.channel, ev: c.ev, key: key, trace: c.trace}
	if d := h.direct(c.channel); d != nil {
		return h.requestInline(ctx, d.mb, m)
	}
	return h.request(ctx, h.router, m)
}

// routeTo is where a join for channel goes: straight to its channel actor
// when the router has published one that has not ended (see direct),
// otherwise to the router, which spawns the channel or finds the new one.
func (h *Hub) routeTo(channel string) *actor.PID {
	if c := h.direct(channel); c != nil {
		return c.pid
	}
	return h.router
}

// direct is the channel actor of channel, counted as the router counts
// what it forwards, for a message about to be sent to it; nil when the
// message must go through the router. Skipping the router's hop saves a
// goroutine wake-up per publish and the router's queue, which under a
// fan-out waits behind every woken connection actor.
func (h *Hub) direct(channel string) *routed {
	h.chansMu.RLock()
	c := h.chans[channel]
	h.chansMu.RUnlock()
	if c != nil && c.enter() {
		return c
	}
	return nil
}

// requestInline is request for a channel actor found by direct (the caller
// checked that the hub is open before direct counted the message): its
// mailbox runs the publish on this goroutine when the actor is idle (see
// mailbox.postAndRun), so the answer is there when it returns.
func (h *Hub) requestInline(ctx context.Context, mb *mailbox, m *publishMsg) (Published, error) {
	m.reply = replies.Get().(chan publishReply)
	mb.postAndRun(m)
	return h.await(ctx, m)
}

var replies = sync.Pool{New: func() any { return make(chan publishReply, 1) }}

func (h *Hub) request(ctx context.Context, to *actor.PID, m *publishMsg) (Published, error) {
	if h.closed.Load() {
		return Published{}, ErrClosed
	}
	m.reply = replies.Get().(chan publishReply)
	h.sys.Root.Send(to, m)
	return h.await(ctx, m)
}

// await waits for the answer to m, sent.
func (h *Hub) await(ctx context.Context, m *publishMsg) (Published, error) {
	// A publish that ran its channel's turn inline has its answer already:
	// taking it first spares the request's context the Done channel it
	// would make for the select below.
	select {
	case r := <-m.reply:
		replies.Put(m.reply)
		return Published{ID: r.id, Duplicate: r.duplicate}, r.err
	default:
	}
	tick, ticks := h.patience.current(), 0
	for {
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
		case <-tick:
			// The first period began before this publish; the second
			// is whole.
			if ticks++; ticks == 2 {
				return Published{}, fmt.Errorf("%w: channel %q did not answer within %v", ErrOutcomeUnknown, m.channel, h.cfg.PublishPatience)
			}
			tick = h.patience.current()
		}
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
	s, err := h.open(w, opts.Channels, opts.Subject, false)
	if err != nil {
		return nil, err
	}
	points := resumePoints(opts.LastEventID, opts.Channels)
	var forwarded chan struct{}
	routed := 0
	for _, ch := range opts.Channels {
		id, ok := points[ch]
		m := &joinMsg{channel: ch, s: s, lastID: id, hasLastID: ok}
		to := h.router
		if h.cfg.Cluster == nil {
			to = h.routeTo(ch)
		}
		if to == h.router {
			if forwarded == nil {
				forwarded = make(chan struct{}, len(opts.Channels))
			}
			m.forwarded = forwarded
			routed++
		}
		h.sys.Root.Send(to, m)
	}
	// Every join must be in its channel actor's mailbox before Open
	// returns, ahead of any publish made after it (or once the client sees
	// the headers, which the first flush sends). A join sent straight to a
	// channel actor is. One sent to the router is only once the router
	// has passed it on: meanwhile the router may publish the channel
	// (spawned for another message), and a later publish would go
	// straight to it, overtaking the join.
	for range routed {
		select {
		case <-forwarded:
		case <-h.shutDone:
		}
	}
	s.wake()
	return s, nil
}

// OpenDirect starts a stream on w that belongs to no channel: the caller
// publishes to it with [Stream.Publish]. This is one EventStream of the
// Python SDK; it still gets heartbeats and the slow-consumer policy.
func (h *Hub) OpenDirect(w http.ResponseWriter) (*Stream, error) {
	s, err := h.open(w, nil, "", true)
	if err != nil {
		return nil, err
	}
	s.wake()
	return s, nil
}

// open asks the streams supervisor for the stream's connection actor and
// waits until it has started: one message and its answer.
func (h *Hub) open(w http.ResponseWriter, channels []string, subject string, direct bool) (*Stream, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	s := &Stream{hub: h, w: w, ctl: newWriteControl(w), channels: channels, subject: subject, direct: direct, done: make(chan struct{})}
	reply := make(chan error, 1)
	h.sys.Root.Send(h.streams, &openMsg{s: s, direct: direct, reply: reply})
	select {
	case err := <-reply:
		if err != nil {
			return nil, err
		}
		return s, nil
	case <-h.shutDone:
		return nil, ErrClosed
	}
}

// OpenStreams is the number of streams not yet closed (whose [Stream.Done]
// is not closed), as the streams supervisor counts its children.
func (h *Hub) OpenStreams() int { return h.count(h.streams) }

// Channels is the number of live channel actors.
func (h *Hub) Channels() int { return h.count(h.router) }

func (h *Hub) count(to *actor.PID) int {
	reply := make(chan int, 1)
	h.sys.Root.Send(to, &countMsg{reply: reply})
	select {
	case n := <-reply:
		return n
	case <-h.shutDone:
		return 0
	}
}

// SpawnChild spawns props as a child of the hub's top actor: it is
// restarted on failure as protoactor's default strategy does (up to 10
// times in 10 s; a producer that returns the same value keeps the actor's
// state) and stopped by [Hub.Shutdown] if still alive. It returns
// [ErrClosed] once the hub is shutting down. The relay uses it in cluster
// mode, so that the hub's tree holds every actor of the node.
func (h *Hub) SpawnChild(props *actor.Props) (*actor.PID, error) {
	reply := make(chan *actor.PID, 1)
	h.sys.Root.Send(h.top, &spawnChild{props: props, reply: reply})
	select {
	case pid := <-reply:
		if pid == nil {
			return nil, ErrClosed
		}
		return pid, nil
	case <-h.shutDone:
		return nil, ErrClosed
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
// are refused from the start. Past ctx, the streams left are stopped without
// another write (one stuck in a write ends when its write deadline passes).
func (h *Hub) Drain(ctx context.Context, retry time.Duration) error {
	h.closed.Store(true)
	done := make(chan struct{})
	h.sys.Root.Send(h.streams, &drainMsg{retry: retry, done: done})
	select {
	case <-done:
		return nil
	case <-h.shutDone:
		return nil // the tree is stopping: every stream goes with it
	case <-ctx.Done():
		h.sys.Root.Send(h.streams, &abortStreams{})
		return ctx.Err()
	}
}

// Shutdown drains the open streams (see [Hub.Drain], with a 1s retry hint),
// then stops the hub's actors and, if the hub created it, its actor system.
// It is idempotent; after ctx expires it returns ctx.Err() and the rest of
// the shutdown carries on without waiting for stuck writes.
func (h *Hub) Shutdown(ctx context.Context) error {
	err := h.Drain(ctx, time.Second)
	h.shutOnce.Do(func() {
		close(h.shutDone)
		h.patience.stop()
		h.asyncCancel()
		h.async.Wait()
		// Each supervisor stops its children and waits for them before it
		// stops itself, so no Stop is sent to an actor already gone.
		stopped := make(chan struct{})
		h.sys.Root.Send(h.top, &stopTree{done: stopped})
		select {
		case <-stopped:
		case <-ctx.Done():
			err = ctx.Err()
		}
		h.gaps.stop()
		h.sys.EventStream.Unsubscribe(h.dead)
		if h.ownSys {
			h.sys.Shutdown()
		}
		h.workers.stop()
	})
	return err
}

// router owns the map from channel name to channel actor. Every message for
// a channel goes through it or is counted as if it did (Hub.direct), which
// is what makes stopping an idle channel safe: the router stops a channel
// only when the channel has handled all that was sent to it.
type router struct {
	hub      *Hub
	channels map[string]*routed
	closing  bool // stopTree: stop once no child is left
	// budget is the history budget's actor, a child spawned with the first
	// channel in memory mode when a budget is set.
	budget *actor.PID
}

type routed struct {
	pid *actor.PID
	mb  *mailbox // pid's
	// sent counts the routed messages sent to the channel actor, by the
	// router and by those that go straight to it (Hub.direct); the
	// channel counts them as seen. routedEnded is set, by the router
	// alone, when the channel ends: from then on nobody sends it anything
	// counted, so a stop decided on a count cannot lose a message.
	sent atomic.Uint64
}

const routedEnded = 1 << 63

// enter counts one message about to be sent straight to the channel
// actor, unless the router has ended it.
func (c *routed) enter() bool {
	for {
		v := c.sent.Load()
		if v&routedEnded != 0 {
			return false
		}
		if c.sent.CompareAndSwap(v, v+1) {
			return true
		}
	}
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
		if m.forwarded != nil {
			m.forwarded <- struct{}{}
		}
	case *leaveMsg:
		r.forward(ctx, m.channel, m, false)
	case *idleMsg:
		// Stopped only if the channel has handled all that was sent to it,
		// and in the same step closed to direct senders.
		if c, ok := r.channels[m.channel]; ok && c.sent.CompareAndSwap(m.seen, m.seen|routedEnded) {
			r.channelEnded(m.channel)
			stopChild(ctx.ActorSystem(), c.pid)
		}
	case *countMsg:
		m.reply <- len(r.channels)
	case *presenceMsg:
		r.presence(ctx, m)
	case *subsMsg:
		r.subscribers(ctx, m)
	case *goneMsg:
		// A channel that failed and was stopped by this router's strategy:
		// forget it, so the next join spawns a fresh one.
		if c, ok := r.channels[m.channel]; ok && c.pid.Equal(m.pid) {
			r.channelEnded(m.channel)
		}
	case *stopTree:
		r.closing = true
		for name, c := range r.channels {
			stopChild(ctx.ActorSystem(), c.pid)
			r.channelEnded(name)
		}
		if r.budget != nil {
			stopChild(ctx.ActorSystem(), r.budget)
			r.budget = nil
		}
		r.stopIfEmpty(ctx)
	case *actor.Terminated:
		r.stopIfEmpty(ctx)
	}
}

func (r *router) stopIfEmpty(ctx actor.Context) {
	if r.closing && len(ctx.Children()) == 0 {
		ctx.Stop(ctx.Self())
	}
}

func (r *router) forward(ctx actor.Context, name string, msg any, create bool) {
	c, ok := r.channels[name]
	if ok && c.sent.Load()&routedEnded != 0 {
		// Only a failed channel closes itself (see channelActor's
		// Stopping); its goneMsg is on the way. The next actor takes this.
		r.channelEnded(name)
		ok = false
	}
	if !ok {
		if !create || r.closing {
			// Nobody will handle it: a presence query for a channel that
			// just failed still gets its answer (none).
			r.hub.settleUnhandled(msg)
			return
		}
		c = r.spawnChannel(ctx, name)
	}
	c.sent.Add(1)
	ctx.Send(c.pid, msg)
	if !ok {
		// Published only now, after the message that spawned it: a
		// publish that finds it goes straight to the channel, and must
		// queue behind the join that made the channel.
		r.hub.chansMu.Lock()
		r.hub.chans[name] = c
		r.hub.chansMu.Unlock()
	}
}

// spawnChannel starts the channel actor of name, the router's one place
// where a channel begins (channelEnded is where it ends): whatever lives
// as long as a channel actor starts here.
func (r *router) spawnChannel(ctx actor.Context, name string) *routed {
	cfg := &r.hub.cfg
	if r.budget == nil && cfg.Cluster == nil && cfg.History > 0 && cfg.HistoryBudget > 0 {
		b := newBudgetActor(cfg.HistoryBudget, r.hub.hobs)
		r.budget = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return b }, actor.WithMailbox(r.hub.mailboxes)))
	}
	r.joined(name)
	ch := newChannelActor(r.hub, name, false, r.budget)
	c := &routed{}
	ch.routed = c
	c.pid = ctx.Spawn(ch.props())
	c.mb = ch.mb
	r.channels[name] = c
	r.hub.cfg.Observer.ChannelsChanged(len(r.channels))
	return c
}

// channelEnded forgets the channel actor of name, which the router stops
// (idle, or the tree stopping) or its strategy stopped after a failure:
// the router's one place where a channel ends. Messages for name that
// follow spawn a fresh actor.
func (r *router) channelEnded(name string) {
	if c, ok := r.channels[name]; ok {
		c.sent.Or(routedEnded)
		r.hub.chansMu.Lock()
		delete(r.hub.chans, name)
		r.hub.chansMu.Unlock()
	}
	delete(r.channels, name)
	r.left(name)
	r.hub.cfg.Observer.ChannelsChanged(len(r.channels))
}
