package redisrelay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/sse"
)

// Sink takes the events the relay reads from Redis. *actors.Hub is one.
// Deliver must not block: the relay actor calls it for every message.
type Sink interface {
	Deliver(channel string, ev sse.Event, pos actors.Pos)
}

var (
	// ErrClosed is returned by a Relay after Shutdown.
	ErrClosed = errors.New("redisrelay: closed")
	// ErrNotSubscribed is wrapped by Ready while a subscription is not
	// confirmed by Redis.
	ErrNotSubscribed = errors.New("redisrelay: not subscribed to Redis")
	// ErrPublishFailing is wrapped by Ready while Redis refuses writes or
	// publishes fail although the subscription is up.
	ErrPublishFailing = errors.New("redisrelay: publishing to Redis fails")

	errNoPong     = errors.New("no answer to ping: Redis hung or unreachable")
	errConnecting = errors.New("connecting")
)

// Backoff between reconnection attempts: doubles from min to max, each wait
// drawn at random from its upper half, so that the nodes of a fleet do not
// reconnect in step.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// parent is a sink that adopts the relay actor into its own tree:
// *actors.Hub is one.
type parent interface {
	System() *actor.ActorSystem
	SpawnChild(props *actor.Props) (*actor.PID, error)
}

// Start begins relaying to sink: with InterestChannels it subscribes to
// the channels given to [Relay.Join], with InterestAll to PREFIX:*. When
// sink is an *actors.Hub, the relay actor is the hub's child (sys is then
// ignored) and stops at the latest with the hub; otherwise it is spawned in
// sys (nil: the relay creates its own quiet actor system, shut down with
// the relay). Start returns at once; [Relay.Ready] reports when Redis has
// answered. It panics when called twice or with a nil sink, and does
// nothing after Shutdown or once the hub is shutting down.
func (r *Relay) Start(sys *actor.ActorSystem, sink Sink) {
	if sink == nil {
		panic("redisrelay: Start with a nil Sink")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		panic("redisrelay: Start called twice")
	}
	if r.closed.Load() {
		return
	}
	r.started = true
	a := &relayActor{r: r, sink: sink, seen: map[string]seenPos{}, lastPrune: time.Now()}
	r.stopped = make(chan struct{})
	// The producer returns the same value, so a restart after a panic keeps
	// the actor's state; only the message that panicked is lost.
	props := actor.PropsFromProducer(func() actor.Actor { return a }, actor.WithMailbox(actor.Unbounded()))
	if p, ok := sink.(parent); ok {
		r.sys = p.System()
		pid, err := p.SpawnChild(props)
		if err != nil {
			return // the hub is shutting down: nothing to relay to
		}
		r.pid = pid
	} else {
		if sys == nil {
			logger := r.cfg.Logger
			sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
			r.ownSys = true
		}
		r.sys = sys
		// The top actor of a system that holds no hub.
		r.pid = sys.Root.Spawn(props)
	}
	r.isStarted.Store(true)
	r.loop.Add(1)
	go r.probe()
	if !r.sharded {
		// The one link runs from the start, so Ready reports the
		// subscription's connection even before the first channel.
		l := r.links[0]
		l.mu.Lock()
		l.start()
		l.mu.Unlock()
	}
	if r.cfg.Interest == InterestChannels {
		r.loop.Add(1)
		go r.syncInterest()
	}
}

// subscriptionDown is nil while every subscription link is confirmed by
// Redis, and why not otherwise.
func (r *Relay) subscriptionDown() error {
	if !r.isStarted.Load() {
		return errNotStarted
	}
	for _, l := range r.links {
		if s := l.state.Load(); s != nil && !s.up {
			return s.err
		}
	}
	return nil
}

// Ready reports whether the node can both relay and publish: nil when its
// subscriptions are confirmed by Redis and Redis takes writes (on every
// master of a cluster), an error wrapping [ErrNotSubscribed] or
// [ErrPublishFailing] with the reason otherwise, and [ErrClosed] after
// Shutdown. It is meant for /readyz, so a node is not sent traffic it would
// answer with 503. It does not block: the write state comes from the last
// publish or write probe, whichever came last (see Config.ProbeInterval).
func (r *Relay) Ready() error {
	if r.closed.Load() {
		return ErrClosed
	}
	down := r.subscriptionDown()
	w := r.writeErr.Load()
	switch {
	case down != nil && w != nil:
		// Both: the refusal of writes is the more specific reason.
		return fmt.Errorf("%w: %v; %w: %v", ErrPublishFailing, *w, ErrNotSubscribed, down)
	case down != nil:
		return fmt.Errorf("%w: %v", ErrNotSubscribed, down)
	case w != nil:
		return fmt.Errorf("%w: %v", ErrPublishFailing, *w)
	}
	return nil
}

// receive owns a link's subscription: it reads continuously and hands every
// message to the relay actor without looking at it, so that Redis never
// sees a slow subscriber (client-output-buffer-limit pubsub would cut it
// and drop messages). It runs until Shutdown closes the subscription.
func (l *link) receive() {
	r := l.r
	defer r.loop.Done()
	ctx := r.ctx
	bo := backoff{next: minBackoff}
	first := true
	for {
		ps := l.connect()
		if ps == nil {
			return
		}
		missed := 0
	read:
		for {
			msg, err := ps.ReceiveTimeout(ctx, r.cfg.PingInterval)
			if r.closed.Load() {
				return
			}
			if err != nil && isTimeout(err) {
				if missed >= r.cfg.MaxMissedPongs {
					// go-redis cannot see a hung Redis: start afresh.
					l.setDown(errNoPong)
					break read
				}
				missed++
				if err = ps.Ping(ctx); err == nil {
					continue
				}
			}
			var rerr redis.Error
			if err != nil && errors.As(err, &rerr) {
				if l.state.Load().up {
					// An error reply (MISCONF refuses even PING): Redis
					// answered, so the link and the subscription are
					// alive; refused writes are the probe's business.
					missed = 0
					continue
				}
				// The subscribe itself was refused (NOAUTH): start
				// afresh, with a new subscription, after a backoff.
				l.setDown(err)
				break read
			}
			if err != nil {
				// go-redis has dropped the connection and will dial and
				// resubscribe on the next receive (to the slot's new
				// master on a cluster, once the slot map is reloaded).
				l.setDown(err)
				l.lostConn()
				if !bo.wait(ctx) {
					return
				}
				continue
			}
			missed = 0
			switch m := msg.(type) {
			case *redis.Message:
				r.received.Add(1)
				r.receivedBytes.Add(uint64(len(m.Payload)))
				r.sys.Root.Send(r.pid, (*inbound)(m))
			case *redis.Subscription:
				switch m.Kind {
				case "psubscribe":
					bo.reset()
					l.setUp(first)
					first = false
				case "subscribe", "ssubscribe":
					bo.reset()
					l.setUp(true)
					if l.confirm(m.Channel) {
						if ch, ok := r.channelOf(m.Channel); ok {
							r.sys.Root.Send(r.pid, &confirmed{channel: ch})
						}
					}
				case "sunsubscribe":
					if l.kicked(m.Channel) {
						l.setDown(errors.New("Redis ended the subscription to " + m.Channel + " (its slot moved)"))
						l.lostConn()
						break read
					}
				}
			case *redis.Pong:
				if !l.state.Load().up {
					bo.reset()
					l.setUp(true)
				}
			}
		}
		_ = ps.Close()
		if !bo.wait(ctx) {
			return
		}
	}
}

// lostConn forgets the confirmations of a connection that broke, and on a
// cluster has the slot map reloaded, so that the next connection goes to
// the slot's master of now.
func (l *link) lostConn() {
	l.mu.Lock()
	l.confirmed = map[string]struct{}{}
	l.mu.Unlock()
	if cc, ok := l.r.sub.(*redis.ClusterClient); ok {
		cc.ReloadState(l.r.ctx)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// setUp marks the link up. A pattern subscription that comes back after
// being down has the actor fetch what it missed from the history streams;
// a channel subscription's confirmations do that channel by channel.
func (l *link) setUp(first bool) {
	if old := l.state.Swap(&linkState{up: true}); old != nil && old.up {
		return
	}
	r := l.r
	if r.cfg.Interest == InterestAll {
		r.cfg.Logger.Info("redisrelay: subscribed", "pattern", r.pattern)
		if !first {
			r.sys.Root.Send(r.pid, theResync)
		}
		return
	}
	r.cfg.Logger.Info("redisrelay: subscription connected", "partition", l.part)
}

func (l *link) setDown(err error) {
	old := l.state.Swap(&linkState{err: err})
	if old == nil || old.up || old.err == errConnecting {
		l.r.cfg.Logger.Warn("redisrelay: subscription down, reconnecting", "partition", l.part, "err", err)
	}
}

type backoff struct{ next time.Duration }

func (b *backoff) reset() { b.next = minBackoff }

// wait sleeps for the next backoff, or returns false when ctx ends first.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(2*b.next, maxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Shutdown stops the subscription, its goroutine and the relay actor, then
// closes the Redis clients; Publish and Replay return [ErrClosed] from its
// start. It is idempotent. When ctx ends first it returns ctx.Err() and the
// rest of the shutdown carries on in the background.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.shutOnce.Do(func() {
		r.done = make(chan struct{})
		r.closed.Store(true)
		r.cancel()
		for _, l := range r.links {
			l.mu.Lock()
			if l.ps != nil {
				_ = l.ps.Close() // ends a receive in progress
			}
			l.mu.Unlock()
		}
		go func() {
			defer close(r.done)
			r.loop.Wait()
			if r.pid != nil {
				// Straight to its mailbox: the hub may have stopped it
				// already, and a Stop through its PID would then be a
				// logged dead letter. Its Stopped closes r.stopped.
				if p, ok := r.sys.ProcessRegistry.Get(r.pid); ok {
					p.Stop(r.pid)
				}
				<-r.stopped
			}
			// The actor is gone, so no fetch starts any more.
			r.async.Wait()
			if r.ownClient {
				_ = r.client.Close()
				_ = r.sub.Close()
			}
			if r.ownSys {
				r.sys.Shutdown()
			}
		}()
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close is Shutdown without a deadline.
func (r *Relay) Close() error { return r.Shutdown(context.Background()) }
