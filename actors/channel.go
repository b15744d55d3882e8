package actors

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/squall-sse/squall/sse"
)

// channelActor owns one channel: its subscribers, its heartbeat timer and,
// in memory mode, its history. It is a child of the router or, for a
// direct stream, of that stream's connection actor. What survives a
// restart: nothing; its supervisor stops it instead, and Stopping closes
// its subscribers (reason Shutdown) so that they resume elsewhere rather
// than hang on a channel that no longer feeds them, and tells the router,
// which spawns a fresh actor for the next join.
type channelActor struct {
	hub     *Hub
	name    string
	private bool // a direct stream's own channel, not in the router

	subs []*Stream
	idx  map[*Stream]int
	// Streams that resumed and are still being handed their replay; they
	// join subs once it is all in their outbox.
	replaying map[*Stream]*replayCursor
	// Cluster mode: a replay read from the shared history can run ahead of
	// the relay, so the same events may still arrive live afterwards. Each
	// entry is the newest position a stream already got from its replay.
	skip map[*Stream]Pos

	hist     history
	budget   *actor.PID // the history budget's actor; nil: no budget
	reported uint64     // hist.base as last told to the budget actor
	scratch  []*frame   // a replay page being handed over, reused

	last        Pos
	seen        uint64 // routed messages handled, for the idle handshake
	lastPublish time.Time
	timer       *time.Timer
	self        *actor.PID
}

// replayCursor is where a resuming stream is in its replay.
type replayCursor struct {
	// Memory mode: the absolute history index of the next frame to hand
	// over.
	next uint64

	// Cluster mode.
	lastID   string
	first    bool     // no page has come back yet
	fetching bool     // a page is being read
	page     []*frame // read and not yet handed over
	newest   Pos      // the newest position the client has once page is written
	more     bool     // the Replayer has events after newest
	// live holds the frames the relay delivered since the last page was
	// asked for: one read after the page's may be missing from it. Frames
	// with a position are also in the shared history, so past the bound
	// they are dropped and read back from it (overflow).
	live      []*frame
	liveBytes int
	overflow  bool
}

func newChannelActor(h *Hub, name string, private bool, budget *actor.PID) *channelActor {
	a := &channelActor{hub: h, name: name, private: private, idx: map[*Stream]int{}}
	if !private && h.cfg.Cluster == nil {
		a.hist = newHistory(h.cfg.History, int64(h.cfg.HistoryBytes), h.cfg.HistoryTTL)
		a.budget = budget
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
	case *refillMsg:
		a.refill(ctx, m.s)
	case *budgetEvict:
		a.hist.evictUpTo(m.upTo)
		a.historyChanged(nil)
		a.checkIdle(ctx)
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
		for s := range a.replaying {
			s.kill(Shutdown)
		}
		if a.budget != nil {
			ctx.Send(a.budget, &budgetUpdate{pid: a.self, gone: true})
		}
		if !a.private {
			ctx.Send(ctx.Parent(), &goneMsg{channel: a.name, pid: a.self})
		}
	}
}

func (a *channelActor) publish(ctx actor.Context, m *publishMsg) {
	if m.key != "" {
		if f, ok := a.hist.byKey(m.key); ok {
			m.reply <- publishReply{id: f.id, duplicate: true}
			return
		}
	}
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
	f.key = m.key
	end := a.hist.end()
	a.hist.add(f)
	if a.hist.end() != end {
		a.historyChanged(f)
	} else {
		a.historyChanged(nil)
	}
	a.fanout(ctx, f)
	m.reply <- publishReply{id: id}
	a.checkIdle(ctx) // a publish nobody hears and nothing keeps ends here
}

// historyChanged reports what the history did since the last call: the
// evictions to the Observer, what it kept and dropped to the budget actor,
// and closes the replays that fell behind it. kept is the frame just added,
// if it was kept.
func (a *channelActor) historyChanged(kept *frame) {
	h := &a.hist
	for r, n := range h.gone {
		if n > 0 {
			a.hub.hobs.HistoryEvicted(EvictReason(r), n)
			h.gone[r] = 0
		}
	}
	if a.budget != nil && (kept != nil || h.base != a.reported) {
		u := &budgetUpdate{pid: a.self, base: h.base}
		if kept != nil {
			u.hasAdd = true
			u.add = budgetEntry{abs: h.end() - 1, cost: kept.cost(), at: kept.at.UnixNano()}
		}
		a.reported = h.base
		a.hub.sys.Root.Send(a.budget, u)
	}
	if a.hub.cfg.Cluster == nil {
		for s, c := range a.replaying {
			if c.next < h.base {
				// The stream read its replay slower than the channel
				// turned its history over: a slow consumer, as a live
				// stream that falls behind its bound is. It resumes
				// from its last event and gets a reset.
				a.remove(s)
				s.kill(SlowConsumer)
			}
		}
	}
}

func (a *channelActor) deliver(ctx actor.Context, m *deliverMsg) {
	f, err := a.encode(m.ev, m.ev.ID, m.pos)
	if err != nil {
		// The relay validates envelopes before they get here.
		a.hub.cfg.Logger.Warn("actors: undeliverable event", "channel", a.name, "err", err)
		return
	}
	for s, c := range a.replaying {
		if !a.holdLive(c, f) {
			a.remove(s)
			s.kill(SlowConsumer)
		}
	}
	a.fanout(ctx, f)
	a.checkIdle(ctx)
}

// holdLive keeps f for a stream whose cluster replay is under way, unless
// its replay already covers it. Past the stream's bound, frames with a
// position are dropped (a later page reads them back); false means frames
// without one (which no page can bring back) passed the bound, and the
// stream must go.
func (a *channelActor) holdLive(c *replayCursor, f *frame) bool {
	if !c.first && !f.pos.IsZero() && !c.newest.Less(f.pos) {
		return true
	}
	c.live = append(c.live, f)
	c.liveBytes += len(f.b)
	if limit := a.hub.cfg.MaxQueueBytes; limit <= 0 || c.liveBytes <= limit {
		return true
	}
	kept := c.live[:0]
	c.liveBytes = 0
	for _, g := range c.live {
		if g.pos.IsZero() {
			kept = append(kept, g)
			c.liveBytes += len(g.b)
		}
	}
	clear(c.live[len(kept):])
	c.live = kept
	c.overflow = true
	return c.liveBytes <= a.hub.cfg.MaxQueueBytes
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
		dropped, kick := s.offer(ctx, f, crowded)
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
	if _, ok := a.replaying[m.s]; ok {
		return
	}
	if !m.hasLastID {
		a.add(m.s)
		return
	}
	if a.hub.cfg.Cluster != nil && !a.private {
		c := &replayCursor{lastID: m.lastID, first: true}
		a.startReplay(m.s, c)
		a.fetch(m.s, c)
		return
	}
	a.hist.expire(time.Now())
	a.historyChanged(nil)
	next, status := a.hist.locate(m.lastID)
	a.hub.cfg.Observer.Resumed(status == resumeFound)
	if status != resumeFound {
		a.sendReset(ctx, m.s, m.lastID, status)
		a.add(m.s)
		return
	}
	a.startReplay(m.s, &replayCursor{next: next})
	a.refill(ctx, m.s)
}

func (a *channelActor) startReplay(s *Stream, c *replayCursor) {
	if a.replaying == nil {
		a.replaying = map[*Stream]*replayCursor{}
	}
	a.replaying[s] = c
}

// replayPage bounds the frames handed to pushReplay at once; the outbox
// takes as many as fit.
const replayPage = 64

// refill hands a resuming stream the next part of its replay, as much as
// its outbox has room for, and makes it a live subscriber once the replay
// is all handed over. In memory mode the replay is read from the history as
// it goes (no copy of it is made); in cluster mode from the page read last,
// and the next page is asked for once that one is handed over.
func (a *channelActor) refill(ctx actor.Context, s *Stream) {
	c, ok := a.replaying[s]
	if !ok {
		return
	}
	if a.hub.cfg.Cluster != nil && !a.private {
		a.refillCluster(ctx, s, c)
		return
	}
	h := &a.hist
	for c.next < h.end() {
		fs := a.scratch[:0]
		for abs := c.next; abs < h.end() && len(fs) < replayPage; abs++ {
			fs = append(fs, h.get(abs))
		}
		n := s.offerReplay(ctx, fs, a.self)
		clear(fs)
		a.scratch = fs
		c.next += uint64(n)
		if n < len(fs) {
			return // the outbox is full: its connection actor calls back
		}
	}
	delete(a.replaying, s)
	a.add(s)
}

func (a *channelActor) refillCluster(ctx actor.Context, s *Stream, c *replayCursor) {
	for {
		if c.fetching {
			return
		}
		if len(c.page) > 0 {
			n := s.offerReplay(ctx, c.page[:min(len(c.page), replayPage)], a.self)
			clear(c.page[:n])
			c.page = c.page[n:]
			if n == 0 || len(c.page) > 0 && n < replayPage {
				return // the outbox is full: its connection actor calls back
			}
			continue
		}
		if c.more || c.overflow {
			a.fetch(s, c)
			return
		}
		if len(c.live) == 0 {
			break
		}
		// What the relay delivered while the last page was read and
		// handed over follows it.
		for _, f := range c.live {
			if f.pos.IsZero() || c.newest.Less(f.pos) {
				c.page = append(c.page, f)
				if !f.pos.IsZero() {
					c.newest = f.pos
				}
			}
		}
		clear(c.live)
		c.live, c.liveBytes = c.live[:0], 0
	}
	delete(a.replaying, s)
	// Events up to the newest position the client now has may still arrive
	// live from the relay: skip them, even when the replay was empty.
	if !c.newest.IsZero() {
		if a.skip == nil {
			a.skip = map[*Stream]Pos{}
		}
		a.skip[s] = c.newest
	}
	a.add(s)
}

// replayPageBytes bounds a cluster replay page when the stream has no byte
// bound.
const replayPageBytes = 256 << 10

// fetch asks the cluster history for the next page of a stream's replay,
// off the actor; live frames are held meanwhile (see holdLive).
func (a *channelActor) fetch(s *Stream, c *replayCursor) {
	c.fetching = true
	c.overflow = false
	req := ReplayRequest{Channel: a.name, LastEventID: c.lastID, MaxEvents: a.hub.cfg.MaxQueueFrames / 2, MaxBytes: a.hub.cfg.MaxQueueBytes / 2}
	if !c.first {
		req.From = c.newest
	}
	if req.MaxBytes <= 0 {
		req.MaxBytes = replayPageBytes
	}
	self, h := a.self, a.hub
	h.goAsync(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, err := h.cfg.Cluster.Replay(ctx, req)
		h.sys.Root.Send(self, &replayDone{s: s, cursor: c, result: r, err: err})
	})
}

func (a *channelActor) replayed(ctx actor.Context, m *replayDone) {
	c, ok := a.replaying[m.s]
	if !ok || c != m.cursor {
		return // the stream left meanwhile
	}
	c.fetching = false
	if m.err != nil {
		a.hub.cfg.Logger.Warn("actors: replay failed", "channel", a.name, "err", m.err)
		a.remove(m.s)
		m.s.kill(Shutdown)
		return
	}
	if c.first {
		c.first = false
		found := m.result.Status == ReplayFound
		a.hub.cfg.Observer.Resumed(found)
		if !found {
			status := resumeUnknown
			if m.result.Status == ReplayExpired {
				status = resumeExpired
			}
			a.sendReset(ctx, m.s, c.lastID, status)
		} else {
			c.newest = m.result.Point
		}
	} else if m.result.Status != ReplayFound {
		// The shared history was trimmed past the stream's cursor while
		// it read its replay: as in memory mode, a slow consumer.
		a.remove(m.s)
		m.s.kill(SlowConsumer)
		return
	}
	for _, e := range m.result.Events {
		if !c.newest.IsZero() && !c.newest.Less(e.Pos) {
			continue // a page never goes back; guard against one that does
		}
		f, err := a.encode(e.Event, e.Event.ID, e.Pos)
		if err != nil {
			continue
		}
		c.page = append(c.page, f)
		c.newest = e.Pos
	}
	c.more = m.result.More && len(m.result.Events) > 0
	// Live frames that the page covered are dropped, so the switch from
	// replay to live has neither a gap nor a duplicate.
	kept := c.live[:0]
	c.liveBytes = 0
	for _, f := range c.live {
		if f.pos.IsZero() || c.newest.Less(f.pos) {
			kept = append(kept, f)
			c.liveBytes += len(f.b)
		}
	}
	clear(c.live[len(kept):])
	c.live = kept
	a.refillCluster(ctx, m.s, c)
}

// sendReset sends the reset event that says the resume point was not found.
func (a *channelActor) sendReset(ctx actor.Context, s *Stream, lastID, status string) {
	data, _ := json.Marshal(struct {
		Channel     string `json:"channel"`
		Reason      string `json:"reason"`
		LastEventID string `json:"lastEventId"`
	}{a.name, status, lastID})
	b, _ := sse.AppendEvent(nil, sse.Event{Event: ResetEvent, Data: data})
	s.offerControl(ctx, &frame{b: b, channel: a.name, at: time.Now()})
}

func (a *channelActor) add(s *Stream) {
	a.idx[s] = len(a.subs)
	a.subs = append(a.subs, s)
}

func (a *channelActor) remove(s *Stream) {
	delete(a.replaying, s)
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
	if len(a.subs) > 0 || len(a.replaying) > 0 {
		return
	}
	a.hist.expire(time.Now())
	a.historyChanged(nil)
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
	a.hist.expire(time.Now())
	a.historyChanged(nil)
	hb := a.hub.cfg.Heartbeat
	if hb > 0 && len(a.subs) > 0 && time.Since(a.lastPublish) >= hb {
		for _, s := range a.subs {
			s.offerControl(ctx, a.hub.beat)
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
