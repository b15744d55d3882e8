package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// directLog is the log of a direct stream's own channel ([Hub.OpenDirect]):
// the channel numbers its events as a memory-mode channel does, so ids
// read alike, but keeps none, since it serves one stream that never
// resumes (its channel is private: a new stream gets a new one). The
// channel is its connection actor's child and stops itself once idle.
type directLog struct {
	last Pos // the newest position assigned
}

func (l *directLog) publish(a *channelActor, m *publishMsg) (*frame, publishReply) {
	l.last = next(l.last, time.Now())
	id := m.ev.ID
	if id == "" {
		id = l.last.String()
	}
	f, err := a.encode(m.ev, id, l.last)
	if err != nil {
		return nil, publishReply{err: err}
	}
	return f, publishReply{id: id}
}

func (l *directLog) delivered(*channelActor, *frame) {}

// resume cannot replay anything: the stream starts live after a reset.
func (l *directLog) resume(a *channelActor, ctx actor.Context, s *Stream, lastID string) {
	a.hub.cfg.Observer.Resumed(false)
	a.sendReset(ctx, s, lastID, resumeDisabled)
	a.add(s)
}

func (l *directLog) refill(*channelActor, actor.Context, *Stream)   {}
func (l *directLog) isReplaying(*Stream) bool                       { return false }
func (l *directLog) replays() int                                   { return 0 }
func (l *directLog) forget(*Stream)                                 {}
func (l *directLog) skipper(*frame) func(*Stream) bool              { return nil }
func (l *directLog) expire(*channelActor, time.Time) bool           { return false }
func (l *directLog) expiryEvery() time.Duration                     { return 0 }
func (l *directLog) receive(*channelActor, actor.Context, any) bool { return false }
func (l *directLog) stopping(*channelActor, actor.Context)          {}
