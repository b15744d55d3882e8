package actors

import (
	"encoding/json"
	"net/url"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/squall-sse/squall/sse"
)

// channelActor owns one channel: its subscribers, its heartbeat timer and
// the fan-out of each frame to them. Where its ids and history come from,
// and how a stream that resumes is replayed, is its log's business (see
// channelLog): the same actor serves a channel in memory mode, in cluster
// mode and a direct stream's own channel.
//
// It is a child of the router or, for a direct stream (private), of that
// stream's connection actor. What survives a restart: nothing; its
// supervisor stops it instead, and Stopping closes its subscribers (reason
// Shutdown) so that they resume elsewhere rather than hang on a channel
// that no longer feeds them, and tells the router, which spawns a fresh
// actor for the next join.
type channelActor struct {
	hub     *Hub
	name    string
	private bool // a direct stream's own channel, not in the router
	log     channelLog

	subs []*Stream
	idx  map[*Stream]int

	seen        uint64   // routed messages handled, for the idle handshake
	routed      *routed  // the router's entry; nil for a private channel
	mb          *mailbox // this actor's, closed at Stopping
	lastPublish time.Time
	lastEvent   time.Time // the previous event's fanout (heartbeats aside)
	timer       *time.Timer
	self        *actor.PID
}

// channelLog is where a channel's ids and history come from, and how a
// stream that resumes is handed its replay. One per mode, one file each:
// memoryLog (channel_memory.go: ids assigned here, history in a ring),
// clusterLog (channel_cluster.go: ids and history decided by the
// [Cluster], events delivered by the relay) and directLog
// (channel_direct.go: a direct stream's own channel, nothing kept).
type channelLog interface {
	// publish numbers m's event and keeps it, and returns the frame to
	// fan out; a nil frame means the answer is reply alone (a duplicate
	// idempotency key, an error).
	publish(a *channelActor, m *publishMsg) (f *frame, reply publishReply)
	// delivered sees a frame the cluster decided before it is fanned out.
	delivered(a *channelActor, f *frame)
	// resume starts handing s the events after lastID, as s drains; s
	// joins a's subscribers (a.add) once it has them all.
	resume(a *channelActor, ctx actor.Context, s *Stream, lastID string)
	// refill hands s, which has room again, the next part of its replay.
	refill(a *channelActor, ctx actor.Context, s *Stream)
	// isReplaying reports whether s is being replayed; replays counts them.
	isReplaying(s *Stream) bool
	replays() int
	// forget drops what the log holds for s, which left.
	forget(s *Stream)
	// skipper returns, when some subscribers already got f by their
	// replay, the test that tells them; nil when none did.
	skipper(f *frame) func(*Stream) bool
	// expire drops what has aged out and reports whether the log still
	// retains events a returning client could replay (which keeps the
	// channel alive without subscribers).
	expire(a *channelActor, now time.Time) (retains bool)
	// expiryEvery is how often expire must run when no heartbeat ticks;
	// zero means never.
	expiryEvery() time.Duration
	// receive handles a message of the log's own; false means it is not
	// one.
	receive(a *channelActor, ctx actor.Context, msg any) bool
	// stopping closes the streams still replaying and lets go of what the
	// log holds outside the actor.
	stopping(a *channelActor, ctx actor.Context)
}

func newChannelActor(h *Hub, name string, private bool, budget *actor.PID) *channelActor {
	a := &channelActor{hub: h, name: name, private: private, idx: map[*Stream]int{}}
	switch {
	case private:
		a.log = &directLog{}
	case h.cfg.Cluster != nil:
		a.log = &clusterLog{}
	default:
		a.log = newMemoryLog(&h.cfg, budget)
	}
	return a
}

// props spawns a with a mailbox it keeps, so that at Stopping it can settle
// what it will never handle.
func (a *channelActor) props() *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return a }, actor.WithMailbox(func() actor.Mailbox {
		m := a.hub.newMailbox()
		a.mb = m
		return m
	}))
}

func (a *channelActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.self = ctx.Self()
		a.lastPublish = time.Now()
		a.arm()
	case *publishMsg:
		a.seen++
		a.publish(ctx, m)
	case *deliverMsg:
		a.seen++
		a.deliver(ctx, m)
	case *joinMsg:
		a.seen++
		a.join(ctx, m)
	case *subsQuery:
		a.seen++
		a.answer(m)
	case *refillMsg:
		a.log.refill(a, ctx, m.s)
	case *leaveMsg:
		a.seen++
		a.remove(m.s)
		a.checkIdle(ctx)
	case *tickMsg:
		a.tick(ctx)
	case *actor.Stopping:
		if a.routed != nil {
			// Direct senders go through the router from now on, which
			// spawns a fresh actor rather than send here.
			a.routed.sent.Or(routedEnded)
		}
		a.mb.close(a.hub.settleUnhandled)
		if a.timer != nil {
			a.timer.Stop()
		}
		for _, s := range a.subs {
			s.kill(Shutdown)
		}
		a.log.stopping(a, ctx)
		if !a.private {
			ctx.Send(ctx.Parent(), &goneMsg{channel: a.name, pid: a.self})
		}
	default:
		a.log.receive(a, ctx, m)
	}
}

func (a *channelActor) publish(ctx actor.Context, m *publishMsg) {
	f, reply := a.log.publish(a, m)
	markTrace(f, m.trace)
	if f == nil {
		m.reply <- reply
		return
	}
	a.fanout(ctx, f)
	m.reply <- reply
	a.checkIdle(ctx) // a publish nobody hears and nothing keeps ends here
}

func (a *channelActor) deliver(ctx actor.Context, m *deliverMsg) {
	f, err := a.encode(m.ev, m.ev.ID, m.pos)
	if err != nil {
		// Cannot happen: the event was checked where it entered.
		a.hub.cfg.Logger.Warn("actors: undeliverable event", "channel", a.name, "err", err)
		return
	}
	markTrace(f, m.trace)
	a.log.delivered(a, f)
	a.fanout(ctx, f)
	a.checkIdle(ctx)
}

func (a *channelActor) encode(ev sse.Event, id string, pos Pos) (*frame, error) {
	ev.ID = id
	b, err := sse.AppendEvent(make([]byte, 0, len(ev.Data)+len(id)+len(ev.Event)+32), ev)
	if err != nil {
		return nil, err
	}
	f := &frame{b: b, id: id, channel: a.name, pos: pos, at: time.Now()}
	if id != "" {
		f.idLen = len("id: ") + len(id) + 1
		f.escID = url.QueryEscape(id)
	}
	return f, nil
}

// crowdedFanout is the number of subscribers from which a publish is worth
// a yield in each connection actor it wakes (see connActor.yield).
const crowdedFanout = 64

// waveCost is about what one write adds to the time it takes to write an
// event to every subscriber on a 2-core machine (10 µs of CPU each, two at
// a time): a channel whose events come sooner after each other than its
// subscribers times this is publishing faster than its streams are written.
const waveCost = 5 * time.Microsecond

// crowded reports whether an event published at at, after the channel's
// previous one, is worth a yield in each connection actor it wakes: see
// fanout.
func (a *channelActor) crowded(at time.Time) bool {
	return len(a.subs) >= crowdedFanout && at.Sub(a.lastEvent) < time.Duration(len(a.subs))*waveCost
}

// fanout queues the same frame for every subscriber.
//
// Its streams yield before they write (see connActor.yield) when the
// channel is crowded and behind: its previous event came less than a
// wave of writes before this one, so more are likely to come while they
// wait, and join their write. A lone broadcast is written at once: yielding
// in each of its thousands of turns only cost it time (a tenth of the
// median, one hub, 16,000 streams).
func (a *channelActor) fanout(ctx actor.Context, f *frame) {
	a.lastPublish = f.at
	obs := a.hub.cfg.Observer
	obs.Published(a.name)
	var kicked []*Stream
	crowded := a.crowded(f.at)
	a.lastEvent = f.at
	skip := a.log.skipper(f)
	for _, s := range a.subs {
		if skip != nil && skip(s) {
			continue
		}
		dropped, kick := s.offer(f, crowded)
		if dropped > 0 {
			obs.Dropped(dropped)
		}
		if kick {
			kicked = append(kicked, s)
		}
	}
	f.fannedOut(len(a.subs))
	for _, s := range kicked {
		a.remove(s)
		s.kill(SlowConsumer)
	}
}

func (a *channelActor) join(ctx actor.Context, m *joinMsg) {
	if _, ok := a.idx[m.s]; ok || a.log.isReplaying(m.s) {
		return
	}
	if !m.hasLastID {
		a.add(m.s)
		return
	}
	a.log.resume(a, ctx, m.s, m.lastID)
}

// replayPage bounds the frames handed to offerReplay at once; the outbox
// takes as many as fit.
const replayPage = 64

// sendReset sends the reset event that says the resume point was not found.
func (a *channelActor) sendReset(ctx actor.Context, s *Stream, lastID, status string) {
	data, _ := json.Marshal(struct {
		Channel     string `json:"channel"`
		Reason      string `json:"reason"`
		LastEventID string `json:"lastEventId"`
	}{a.name, status, lastID})
	b, _ := sse.AppendEvent(nil, sse.Event{Event: ResetEvent, Data: data})
	s.offerControl(&frame{b: b, channel: a.name, at: time.Now()})
}

// drop forgets a subscriber or a stream being replayed and closes it with
// r, without writing anything more.
func (a *channelActor) drop(s *Stream, r CloseReason) {
	a.remove(s)
	s.kill(r)
}

func (a *channelActor) add(s *Stream) {
	a.idx[s] = len(a.subs)
	a.subs = append(a.subs, s)
}

func (a *channelActor) remove(s *Stream) {
	a.log.forget(s)
	i, ok := a.idx[s]
	if !ok {
		return
	}
	last := len(a.subs) - 1
	a.subs[i] = a.subs[last]
	a.idx[a.subs[i]] = i
	a.subs[last] = nil
	a.subs = a.subs[:last]
	delete(a.idx, s)
}

// checkIdle offers to stop once nothing needs this actor: no subscriber, no
// replay under way, and no history that a returning client could still
// replay.
func (a *channelActor) checkIdle(ctx actor.Context) {
	if len(a.subs) > 0 || a.log.replays() > 0 {
		return
	}
	if a.log.expire(a, time.Now()) {
		return
	}
	if a.private {
		ctx.Stop(ctx.Self())
		return
	}
	ctx.Send(ctx.Parent(), &idleMsg{channel: a.name, seen: a.seen})
}

func (a *channelActor) tick(ctx actor.Context) {
	a.log.expire(a, time.Now())
	hb := a.hub.cfg.Heartbeat
	if hb > 0 && len(a.subs) > 0 && time.Since(a.lastPublish) >= hb {
		for _, s := range a.subs {
			s.offerControl(a.hub.beat)
		}
		a.lastPublish = time.Now()
	}
	a.checkIdle(ctx)
	a.arm()
}

// arm schedules the next tick: the heartbeat, or the log's expiry check.
// The timer callback only sends; all state changes happen in Receive.
func (a *channelActor) arm() {
	d := a.hub.cfg.Heartbeat
	if d > 0 {
		if wait := d - time.Since(a.lastPublish); wait > 0 {
			d = wait
		}
	} else if d = a.log.expiryEvery(); d <= 0 {
		return
	}
	if a.timer == nil {
		self, root := a.self, a.hub.sys.Root
		a.timer = time.AfterFunc(d, func() { root.Send(self, theTick) })
		return
	}
	a.timer.Reset(d)
}
