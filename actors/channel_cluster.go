package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// clusterLog is a channel's log in cluster mode: ids and history are the
// [Cluster]'s (Redis), events arrive already numbered from the relay
// (deliverMsg), and a stream that resumes is replayed one page at a time
// from the shared history, read off the actor.
//
// A replay read from the shared history can run ahead of the relay, so
// the same events may still arrive live afterwards: skip holds, for each
// stream whose replay ended, the newest position it already got.
type clusterLog struct {
	replaying map[*Stream]*replayCursor
	skip      map[*Stream]Pos
}

// replayCursor is where a resuming stream is in its cluster replay.
type replayCursor struct {
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

var errClusterPublish = errors.New("actors: a cluster channel takes no publish: the Cluster numbers events")

// publish is never called in cluster mode: the hub hands publishes to
// the Cluster, and they come back delivered.
func (l *clusterLog) publish(*channelActor, *publishMsg) (*frame, publishReply) {
	return nil, publishReply{err: errClusterPublish}
}

// delivered holds f for every stream whose replay is under way.
func (l *clusterLog) delivered(a *channelActor, f *frame) {
	for s, c := range l.replaying {
		if !l.holdLive(a, c, f) {
			a.drop(s, SlowConsumer)
		}
	}
}

// holdLive keeps f for a stream whose cluster replay is under way, unless
// its replay already covers it. Past the stream's bound, frames with a
// position are dropped (a later page reads them back); false means frames
// without one (which no page can bring back) passed the bound, and the
// stream must go.
func (l *clusterLog) holdLive(a *channelActor, c *replayCursor, f *frame) bool {
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

func (l *clusterLog) resume(a *channelActor, _ actor.Context, s *Stream, lastID string) {
	c := &replayCursor{lastID: lastID, first: true}
	if l.replaying == nil {
		l.replaying = map[*Stream]*replayCursor{}
	}
	l.replaying[s] = c
	l.fetch(a, s, c)
}

// refill hands s the page read last, as much as its outbox has room for;
// the next page is asked for once that one is handed over, and s becomes
// a live subscriber once the Replayer has nothing more.
func (l *clusterLog) refill(a *channelActor, ctx actor.Context, s *Stream) {
	c, ok := l.replaying[s]
	if !ok {
		return
	}
	for {
		if c.fetching {
			return
		}
		if len(c.page) > 0 {
			n := s.offerReplay(c.page[:min(len(c.page), replayPage)], a.self)
			clear(c.page[:n])
			c.page = c.page[n:]
			if n == 0 || len(c.page) > 0 && n < replayPage {
				return // the outbox is full: its connection actor calls back
			}
			continue
		}
		if c.more || c.overflow {
			l.fetch(a, s, c)
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
	delete(l.replaying, s)
	// Events up to the newest position the client now has may still arrive
	// live from the relay: skip them, even when the replay was empty.
	if !c.newest.IsZero() {
		if l.skip == nil {
			l.skip = map[*Stream]Pos{}
		}
		l.skip[s] = c.newest
	}
	a.add(s)
}

// replayPageBytes bounds a cluster replay page when the stream has no byte
// bound.
const replayPageBytes = 256 << 10

// fetch asks the cluster history for the next page of a stream's replay,
// off the actor; live frames are held meanwhile (see holdLive).
func (l *clusterLog) fetch(a *channelActor, s *Stream, c *replayCursor) {
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

func (l *clusterLog) receive(a *channelActor, ctx actor.Context, msg any) bool {
	m, ok := msg.(*replayDone)
	if ok {
		l.replayed(a, ctx, m)
	}
	return ok
}

func (l *clusterLog) replayed(a *channelActor, ctx actor.Context, m *replayDone) {
	c, ok := l.replaying[m.s]
	if !ok || c != m.cursor {
		return // the stream left meanwhile
	}
	c.fetching = false
	if m.err != nil {
		a.hub.cfg.Logger.Warn("actors: replay failed", "channel", a.name, "err", m.err)
		a.drop(m.s, Shutdown)
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
		a.drop(m.s, SlowConsumer)
		return
	}
	for _, e := range m.result.Events {
		if !c.newest.IsZero() && !c.newest.Less(e.Pos) {
			continue // a page never goes back; guard against one that does
		}
		// The Replayer read what the relay wrote: an event it cannot
		// encode is skipped, as the relay would have refused it live.
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
	l.refill(a, ctx, m.s)
}

func (l *clusterLog) isReplaying(s *Stream) bool { _, ok := l.replaying[s]; return ok }
func (l *clusterLog) replays() int               { return len(l.replaying) }

func (l *clusterLog) forget(s *Stream) {
	delete(l.replaying, s)
	delete(l.skip, s)
}

// skipper tells the streams that got f by their replay; the first frame
// past a stream's replay ends the check for it.
func (l *clusterLog) skipper(f *frame) func(*Stream) bool {
	if len(l.skip) == 0 || f.pos.IsZero() {
		return nil
	}
	return func(s *Stream) bool {
		newest, ok := l.skip[s]
		if !ok {
			return false
		}
		if newest.Less(f.pos) {
			delete(l.skip, s)
			return false
		}
		return true
	}
}

// expire has nothing to do: the history is the Cluster's, and nothing
// kept here holds the channel alive.
func (l *clusterLog) expire(*channelActor, time.Time) bool { return false }
func (l *clusterLog) expiryEvery() time.Duration           { return 0 }

func (l *clusterLog) stopping(*channelActor, actor.Context) {
	for s := range l.replaying {
		s.kill(Shutdown)
	}
}
