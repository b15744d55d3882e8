package actors

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/squall-sse/squall/httpedge/sse"
)

// channelActor owns one channel: its subscribers, its heartbeat timer and,
// in memory mode, its history. What survives a restart: nothing; its
// supervisor stops it instead, and Stopping closes its subscribers so that
// they resume elsewhere rather than hang on a channel that no longer feeds
// them.
type channelActor struct {
	hub     *Hub
	name    string
	private bool // a direct stream's own channel, not in the router

	subs []*Stream
	idx  map[*Stream]int
	// Cluster mode: streams whose replay is being fetched, with the live
	// frames that arrived meanwhile.
	waiting map[*Stream]*waitingJoin
	// Cluster mode: a replay read from the shared history can run ahead of
	// the relay, so the same events may still arrive live afterwards. Each
	// entry is the newest position a stream already got from its replay.
	skip map[*Stream]Pos

	hist        history
	last        Pos
	seen        uint64 // routed messages handled, for the idle handshake
	lastPublish time.Time
	timer       *time.Timer
	self        *actor.PID
}

type waitingJoin struct {
	lastID string
	live   []*frame
}

func newChannelActor(h *Hub, name string, private bool) *channelActor {
	a := &channelActor{hub: h, name: name, private: private, idx: map[*Stream]int{}}
	if !private && h.cfg.Cluster == nil {
		a.hist = newHistory(h.cfg.History, h.cfg.HistoryTTL)
	}
	return a
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
	case *replayDone:
		a.replayed(ctx, m)
	case *leaveMsg:
		a.seen++
		a.remove(m.s)
		a.checkIdle(ctx)
	case *tickMsg:
		a.tick(ctx)
	case *actor.Stopping:
		if a.timer != nil {
			a.timer.Stop()
		}
		for _, s := range a.subs {
			s.kill(Shutdown)
		}
		for s := range a.waiting {
			s.kill(Shutdown)
		}
	}
}

func (a *channelActor) publish(ctx actor.Context, m *publishMsg) {
	pos := next(a.last, time.Now())
	a.last = pos
	id := m.ev.ID
	if id == "" {
		id = pos.String()
	}
	f, err := a.encode(m.ev, id, pos)
	if err != nil {
		m.reply <- publishReply{err: err}
		return
	}
	a.hist.add(f)
	a.fanout(ctx, f)
	m.reply <- publishReply{id: id}
	a.checkIdle(ctx) // a publish nobody hears and nothing keeps ends here
}

func (a *channelActor) deliver(ctx actor.Context, m *deliverMsg) {
	f, err := a.encode(m.ev, m.ev.ID, m.pos)
	if err != nil {
		// The relay validates envelopes before they get here.
		a.hub.cfg.Logger.Warn("actors: undeliverable event", "channel", a.name, "err", err)
		return
	}
	for _, w := range a.waiting {
		w.live = append(w.live, f)
	}
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

// fanout queues the same frame for every subscriber.
func (a *channelActor) fanout(ctx actor.Context, f *frame) {
	a.lastPublish = f.at
	obs := a.hub.cfg.Observer
	obs.Published(a.name)
	var kicked []*Stream
	crowded := len(a.subs) >= crowdedFanout
	for _, s := range a.subs {
		if len(a.skip) > 0 && a.replayedAlready(s, f) {
			continue
		}
		wake, dropped, kick := s.out.push(f, crowded)
		if wake {
			s.wake(ctx)
		}
		if dropped > 0 {
			obs.Dropped(dropped)
		}
		if kick {
			kicked = append(kicked, s)
		}
	}
	for _, s := range kicked {
		a.remove(s)
		s.kill(SlowConsumer)
	}
}

// replayedAlready reports whether s got f in its replay; the first frame
// past the replay ends the check for s.
func (a *channelActor) replayedAlready(s *Stream, f *frame) bool {
	newest, ok := a.skip[s]
	if !ok || f.pos.IsZero() {
		return false
	}
	if newest.Less(f.pos) {
		delete(a.skip, s)
		return false
	}
	return true
}

func (a *channelActor) join(ctx actor.Context, m *joinMsg) {
	if _, ok := a.idx[m.s]; ok {
		return
	}
	if !m.hasLastID {
		a.add(m.s)
		return
	}
	if a.hub.cfg.Cluster != nil && !a.private {
		a.fetchReplay(m.s, m.lastID)
		return
	}
	frames, status := a.hist.after(m.lastID)
	a.sendReplay(ctx, m.s, m.lastID, frames, status)
	a.add(m.s)
}

// fetchReplay asks the cluster history for what follows lastID, off the
// actor, and holds the stream's live frames until the answer comes back.
func (a *channelActor) fetchReplay(s *Stream, lastID string) {
	if a.waiting == nil {
		a.waiting = map[*Stream]*waitingJoin{}
	}
	a.waiting[s] = &waitingJoin{lastID: lastID}
	self, h, name := a.self, a.hub, a.name
	h.goAsync(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, err := h.cfg.Cluster.Replay(ctx, ReplayRequest{Channel: name, LastEventID: lastID})
		// Every page at once until the paged replay of issue 14 lands here.
		for err == nil && r.More && len(r.Events) > 0 {
			var next Replay
			next, err = h.cfg.Cluster.Replay(ctx, ReplayRequest{Channel: name, From: r.Events[len(r.Events)-1].Pos})
			if next.Status != ReplayFound {
				r = next
				break
			}
			r.Events, r.More = append(r.Events, next.Events...), next.More
		}
		h.sys.Root.Send(self, &replayDone{s: s, result: r, err: err})
	})
}

func (a *channelActor) replayed(ctx actor.Context, m *replayDone) {
	w, ok := a.waiting[m.s]
	if !ok {
		return // the stream left meanwhile
	}
	delete(a.waiting, m.s)
	if m.err != nil {
		a.hub.cfg.Logger.Warn("actors: replay failed", "channel", a.name, "err", m.err)
		m.s.kill(Shutdown)
		return
	}
	frames := make([]*frame, 0, len(m.result.Events)+len(w.live))
	// newest is the last position the client has once the replay is
	// written: the resume point, or the last replayed event.
	newest := m.result.Point
	for _, e := range m.result.Events {
		f, err := a.encode(e.Event, e.Event.ID, e.Pos)
		if err != nil {
			continue
		}
		frames = append(frames, f)
		newest = e.Pos
	}
	// Live frames that the replay already covered are dropped, so the
	// switch from replay to live has neither a gap nor a duplicate.
	for _, f := range w.live {
		if f.pos.IsZero() || newest.Less(f.pos) {
			frames = append(frames, f)
		}
	}
	status := resumeFound
	switch m.result.Status {
	case ReplayUnknown:
		status = resumeUnknown
	case ReplayExpired:
		status = resumeExpired
	}
	// Events up to the newest position the client now has may still arrive
	// live from the relay: skip them, even when the replay was empty.
	last := lastPos(frames)
	if last.Less(newest) {
		last = newest
	}
	if !last.IsZero() {
		if a.skip == nil {
			a.skip = map[*Stream]Pos{}
		}
		a.skip[m.s] = last
	}
	a.sendReplay(ctx, m.s, w.lastID, frames, status)
	a.add(m.s)
}

func lastPos(frames []*frame) Pos {
	for i := len(frames) - 1; i >= 0; i-- {
		if !frames[i].pos.IsZero() {
			return frames[i].pos
		}
	}
	return Pos{}
}

// sendReplay sends a reset event when the resume point was not found, then
// the frames to catch up with.
func (a *channelActor) sendReplay(ctx actor.Context, s *Stream, lastID string, frames []*frame, status string) {
	a.hub.cfg.Observer.Resumed(status == resumeFound)
	if status != resumeFound {
		data, _ := json.Marshal(struct {
			Channel     string `json:"channel"`
			Reason      string `json:"reason"`
			LastEventID string `json:"lastEventId"`
		}{a.name, status, lastID})
		b, _ := sse.AppendEvent(nil, sse.Event{Event: "reset", Data: data})
		frames = append([]*frame{{b: b, channel: a.name, at: time.Now()}}, frames...)
	}
	if s.out.pushAll(frames) {
		s.wake(ctx)
	}
}

func (a *channelActor) add(s *Stream) {
	a.idx[s] = len(a.subs)
	a.subs = append(a.subs, s)
}

func (a *channelActor) remove(s *Stream) {
	delete(a.waiting, s)
	delete(a.skip, s)
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

// checkIdle offers to stop once nothing needs this actor: no subscriber, and
// no history that a returning client could still replay.
func (a *channelActor) checkIdle(ctx actor.Context) {
	if len(a.subs) > 0 || len(a.waiting) > 0 {
		return
	}
	a.hist.expire(time.Now())
	if !a.hist.empty() {
		return
	}
	if a.private {
		ctx.Stop(ctx.Self())
		return
	}
	ctx.Send(ctx.Parent(), &idleMsg{channel: a.name, seen: a.seen})
}

func (a *channelActor) tick(ctx actor.Context) {
	hb := a.hub.cfg.Heartbeat
	if hb > 0 && len(a.subs) > 0 && time.Since(a.lastPublish) >= hb {
		for _, s := range a.subs {
			if s.out.pushIdle(a.hub.beat) {
				s.wake(ctx)
			}
		}
		a.lastPublish = time.Now()
	}
	a.checkIdle(ctx)
	a.arm()
}

// arm schedules the next tick: the heartbeat, or a history-expiry check.
// The timer callback only sends; all state changes happen in Receive.
func (a *channelActor) arm() {
	d := a.hub.cfg.Heartbeat
	if d > 0 {
		if wait := d - time.Since(a.lastPublish); wait > 0 {
			d = wait
		}
	} else if ttl := a.hub.cfg.HistoryTTL; ttl > 0 && a.hist.enabled() {
		d = min(ttl, time.Minute)
	} else {
		return
	}
	if a.timer == nil {
		self, root := a.self, a.hub.sys.Root
		a.timer = time.AfterFunc(d, func() { root.Send(self, theTick) })
		return
	}
	a.timer.Reset(d)
}
