package actors

import (
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/squall-sse/squall/sse"
)

// The hub's actors form one tree (drawn in the package doc): the hub actor
// at the top, the streams supervisor and the router under it, connection
// actors under the streams supervisor, channel actors under the router.
// Each parent stops a failing child (stopStrategy) and learns of every
// child's end from protoactor's Terminated; nothing outside the tree keeps
// a list of its actors.

// stopStrategy stops a failing actor instead of restarting it with empty
// state; what a stop means for each actor is written on its type.
var stopStrategy = actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })

// stopChild stops a child that may be ending on its own at the same moment.
// The Stop goes straight to the child's mailbox, where a late one is
// ignored; sent through its PID, it would become a logged dead letter
// (and start protoactor's throttle goroutine) once the child has left the
// registry, which happens before its parent hears of it.
func stopChild(sys *actor.ActorSystem, pid *actor.PID) {
	if p, ok := sys.ProcessRegistry.Get(pid); ok {
		p.Stop(pid)
	}
}

// stopTree asks a supervisor to stop its children and then itself, once
// every child has gone: stopping it directly would send Stop to children
// that had just ended on their own (see stopChild). done, when set, is
// closed once the supervisor has stopped.
type stopTree struct{ done chan struct{} }

func (*stopTree) IgnoreDeadLetterLogging() {}

// hubActor is the top of the tree, the only actor the hub spawns at the
// root. It spawns the streams supervisor and the router, and adopts the
// actors given to [Hub.SpawnChild] (the relay in cluster mode).
type hubActor struct {
	h       *Hub
	started chan struct{} // closed once the streams supervisor and router exist
	adopted map[string]*actor.PID
	closing *stopTree
}

// spawnChild asks the hub actor to adopt an actor; reply gets nil once the
// hub is closing.
type spawnChild struct {
	props *actor.Props
	reply chan *actor.PID
}

func (*spawnChild) IgnoreDeadLetterLogging() {}

func (a *hubActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		h := a.h
		h.streams = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return &streamsActor{hub: h, open: map[string]*Stream{}} },
			actor.WithMailbox(h.mailboxes), actor.WithSupervisor(stopStrategy)))
		h.router = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return &router{hub: h, channels: map[string]*routed{}} },
			actor.WithMailbox(h.mailboxes), actor.WithSupervisor(stopStrategy)))
		close(a.started)
	case *spawnChild:
		if a.closing != nil {
			m.reply <- nil
			return
		}
		pid := ctx.Spawn(m.props)
		a.adopted[pid.Id] = pid
		m.reply <- pid
	case *stopTree:
		a.closing = m
		ctx.Send(a.h.streams, &stopTree{})
		ctx.Send(a.h.router, &stopTree{})
		for _, pid := range a.adopted {
			stopChild(ctx.ActorSystem(), pid)
		}
		a.stopIfEmpty(ctx)
	case *actor.Terminated:
		delete(a.adopted, m.Who.Id)
		a.stopIfEmpty(ctx)
	case *actor.Stopped:
		if a.closing != nil && a.closing.done != nil {
			close(a.closing.done)
		}
	}
}

func (a *hubActor) stopIfEmpty(ctx actor.Context) {
	if a.closing != nil && len(ctx.Children()) == 0 {
		ctx.Stop(ctx.Self())
	}
}

// HandleFailure is the hub actor's supervision: the streams supervisor and
// the router are stopped (their state cannot be rebuilt), an adopted actor
// is restarted as protoactor's default does (up to 10 times in 10 s), which
// keeps its state when its producer returns the same value, as the relay's
// does.
func (a *hubActor) HandleFailure(sys *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, message any) {
	if _, ok := a.adopted[child.Id]; ok {
		restartStrategy.HandleFailure(sys, sup, child, rs, reason, message)
		return
	}
	stopStrategy.HandleFailure(sys, sup, child, rs, reason, message)
}

var restartStrategy = actor.DefaultSupervisorStrategy()

// protoactor finds a parent's own strategy by this interface; a signature
// that drifted would silently fall back to Props' strategy.
var _ actor.SupervisorStrategy = (*hubActor)(nil)

// streamsActor supervises the connection actors: it spawns one per stream
// (the one message an open costs), counts, drains and stops them, reading
// its children rather than a list of its own; open maps a child to its
// Stream only so that Disconnect can match subjects and channels. Its strategy stops a failing
// connection actor, whose Stopping records the close reason.
type streamsActor struct {
	hub      *Hub
	kids     int  // len(ctx.Children()), without the copy
	draining bool // Drain was called: no new stream
	closing  bool // stopTree: no new stream, stop once empty
	drained  []chan struct{}
	open     map[string]*Stream // by PID Id: the streams Disconnect can match
}

// openMsg asks the streams supervisor for a connection actor; the actor
// answers reply once it has started (nil), or the supervisor does with
// ErrClosed when the hub is draining.
type openMsg struct {
	s      *Stream
	direct bool
	reply  chan error
}

func (*openMsg) IgnoreDeadLetterLogging() {}

// drainMsg closes every stream after a jittered retry hint; done is closed
// once no stream is left.
type drainMsg struct {
	retry time.Duration
	done  chan struct{}
}

func (*drainMsg) IgnoreDeadLetterLogging() {}

// abortStreams stops the streams a drain could not close in time.
type abortStreams struct{}

func (*abortStreams) IgnoreDeadLetterLogging() {}

func (a *streamsActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *openMsg:
		if a.draining || a.closing {
			m.reply <- ErrClosed
			return
		}
		// Counted before the actor can end, so the Observer never sees a
		// close before its open.
		a.hub.cfg.Observer.StreamOpened()
		pid := ctx.Spawn(newConnActor(m.s, a.hub, m.direct, m.reply))
		a.open[pid.Id] = m.s
		a.kids++
	case *countMsg:
		m.reply <- a.live(ctx)
	case *drainMsg:
		a.draining = true
		for _, pid := range ctx.Children() {
			var final []byte
			if m.retry > 0 {
				final = sse.AppendRetry(nil, m.retry+rand.N(m.retry+1))
			}
			ctx.Send(pid, &closeMsg{reason: Shutdown, final: final})
		}
		a.drained = append(a.drained, m.done)
		a.checkEmpty(ctx)
	case *abortStreams:
		// A stream stuck in a write takes the Stop once the write ends,
		// ahead of anything queued: it ends without another write.
		for _, pid := range ctx.Children() {
			stopChild(ctx.ActorSystem(), pid)
		}
	case *stopTree:
		a.closing = true
		for _, pid := range ctx.Children() {
			stopChild(ctx.ActorSystem(), pid)
		}
		a.checkEmpty(ctx)
	case *disconnectMsg:
		a.disconnect(ctx, m)
	case *actor.Terminated:
		delete(a.open, m.Who.Id)
		a.kids--
		a.checkEmpty(ctx)
	case *actor.Stopped:
		for _, d := range a.drained {
			close(d)
		}
	}
}

// live counts the children that have not finished stopping: one that has
// left the registry has run Stopped (its Stream is done) even if its
// Terminated is still on its way here, so the count agrees with Done.
func (a *streamsActor) live(ctx actor.Context) int {
	if a.kids == 0 {
		return 0
	}
	n := 0
	reg := ctx.ActorSystem().ProcessRegistry
	for _, pid := range ctx.Children() {
		if _, ok := reg.Get(pid); ok {
			n++
		}
	}
	return n
}

func (a *streamsActor) checkEmpty(ctx actor.Context) {
	if a.kids > 0 {
		return
	}
	for _, d := range a.drained {
		close(d)
	}
	a.drained = nil
	if a.closing {
		ctx.Stop(ctx.Self())
	}
}
