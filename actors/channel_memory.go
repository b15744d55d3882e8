package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// memoryLog is a channel's log in memory mode: the channel numbers its
// events itself (see [Pos]) and keeps them in its history ring, bounded by
// count, bytes and age and, with the other channels, by the history
// budget. A stream that resumes is replayed straight from the ring.
type memoryLog struct {
	hist     history
	budget   *actor.PID // the history budget's actor; nil: no budget
	reported uint64     // hist.base as last told to the budget actor
	scratch  []*frame   // a replay part being handed over, reused
	last     Pos        // the newest position assigned

	// replaying maps each stream being replayed to the absolute history
	// index of the next frame to hand it; the ring turns under it, and a
	// cursor that falls behind the ring's base was too slow.
	replaying map[*Stream]uint64
}

func newMemoryLog(cfg *Config, budget *actor.PID) *memoryLog {
	return &memoryLog{hist: newHistory(cfg.History, int64(cfg.HistoryBytes), cfg.HistoryTTL), budget: budget}
}

func (l *memoryLog) publish(a *channelActor, m *publishMsg) (*frame, publishReply) {
	if m.key != "" {
		if f, ok := l.hist.byKey(m.key); ok {
			return nil, publishReply{id: f.id, duplicate: true}
		}
	}
	l.last = next(l.last, time.Now())
	id := m.ev.ID
	if id == "" {
		id = l.last.String()
	}
	f, err := a.encode(m.ev, id, l.last)
	if err != nil {
		return nil, publishReply{err: err}
	}
	f.key = m.key
	end := l.hist.end()
	l.hist.add(f)
	if l.hist.end() != end {
		l.changed(a, f)
	} else {
		l.changed(a, nil)
	}
	return f, publishReply{id: id}
}

// changed reports what the history did since the last call: the
// evictions to the Observer, what it kept and dropped to the budget actor,
// and closes the replays that fell behind it. kept is the frame just added,
// if it was kept.
func (l *memoryLog) changed(a *channelActor, kept *frame) {
	h := &l.hist
	for r, n := range h.gone {
		if n > 0 {
			a.hub.hobs.HistoryEvicted(EvictReason(r), n)
			h.gone[r] = 0
		}
	}
	if l.budget != nil && (kept != nil || h.base != l.reported) {
		u := &budgetUpdate{pid: a.self, base: h.base}
		if kept != nil {
			u.hasAdd = true
			u.add = budgetEntry{abs: h.end() - 1, cost: kept.cost(), at: kept.at.UnixNano()}
		}
		l.reported = h.base
		a.hub.sys.Root.Send(l.budget, u)
	}
	for s, next := range l.replaying {
		if next < h.base {
			// The stream read its replay slower than the channel
			// turned its history over: a slow consumer, as a live
			// stream that falls behind its bound is. It resumes
			// from its last event and gets a reset.
			a.drop(s, SlowConsumer)
		}
	}
}

func (l *memoryLog) delivered(*channelActor, *frame) {}

func (l *memoryLog) resume(a *channelActor, ctx actor.Context, s *Stream, lastID string) {
	l.hist.expire(time.Now())
	l.changed(a, nil)
	next, status := l.hist.locate(lastID)
	a.hub.cfg.Observer.Resumed(status == resumeFound)
	if status != resumeFound {
		a.sendReset(ctx, s, lastID, status)
		a.add(s)
		return
	}
	if l.replaying == nil {
		l.replaying = map[*Stream]uint64{}
	}
	l.replaying[s] = next
	l.refill(a, ctx, s)
}

// refill hands s as much of its replay as its outbox has room for, read
// from the ring as it goes (no copy of it is made), and makes it a live
// subscriber once it is all handed over.
func (l *memoryLog) refill(a *channelActor, ctx actor.Context, s *Stream) {
	next, ok := l.replaying[s]
	if !ok {
		return
	}
	h := &l.hist
	for next < h.end() {
		fs := l.scratch[:0]
		for abs := next; abs < h.end() && len(fs) < replayPage; abs++ {
			fs = append(fs, h.get(abs))
		}
		n := s.offerReplay(fs, a.self)
		clear(fs)
		l.scratch = fs
		next += uint64(n)
		l.replaying[s] = next
		if n < len(fs) {
			return // the outbox is full: its connection actor calls back
		}
	}
	delete(l.replaying, s)
	a.add(s)
}

func (l *memoryLog) isReplaying(s *Stream) bool { _, ok := l.replaying[s]; return ok }
func (l *memoryLog) replays() int               { return len(l.replaying) }
func (l *memoryLog) forget(s *Stream)           { delete(l.replaying, s) }

func (l *memoryLog) skipper(*frame) func(*Stream) bool { return nil }

func (l *memoryLog) expire(a *channelActor, now time.Time) bool {
	l.hist.expire(now)
	l.changed(a, nil)
	return !l.hist.empty()
}

func (l *memoryLog) expiryEvery() time.Duration {
	if ttl := l.hist.ttl; ttl > 0 && l.hist.enabled() {
		return min(ttl, time.Minute)
	}
	return 0
}

func (l *memoryLog) receive(a *channelActor, ctx actor.Context, msg any) bool {
	m, ok := msg.(*budgetEvict)
	if !ok {
		return false
	}
	l.hist.evictUpTo(m.upTo)
	l.changed(a, nil)
	a.checkIdle(ctx)
	return true
}

func (l *memoryLog) stopping(a *channelActor, ctx actor.Context) {
	for s := range l.replaying {
		s.kill(Shutdown)
	}
	if l.budget != nil {
		ctx.Send(l.budget, &budgetUpdate{pid: a.self, gone: true})
	}
}
