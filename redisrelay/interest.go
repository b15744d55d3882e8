package redisrelay

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/actors"
)

// Interest says what a node subscribes to.
type Interest int

const (
	// InterestChannels subscribes to a channel while the node has a stream
	// on it (the hub calls [Relay.Join] and [Relay.Leave]): a node receives
	// only the events its streams want.
	InterestChannels Interest = iota
	// InterestAll subscribes to every channel with one pattern, PREFIX:*:
	// every node receives every event. It needs classic pub/sub.
	InterestAll
)

// interestSet is the set of channels the hub has streams on, with the time
// each joined, and the channels whose subscription must change.
type interestSet struct {
	mu    sync.Mutex
	since map[string]time.Time
	dirty map[string]struct{}
	wake  chan struct{}
}

func (s *interestSet) init() {
	s.since = map[string]time.Time{}
	s.dirty = map[string]struct{}{}
	s.wake = make(chan struct{}, 1)
}

func (s *interestSet) mark(channel string) {
	s.dirty[channel] = struct{}{}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// joinedAt is when the node last began wanting channel.
func (s *interestSet) joinedAt(channel string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.since[channel]
	return t, ok
}

// Join tells the relay that the node has a stream on channel: the relay
// subscribes to it (batched with every other join pending), and once Redis
// confirms, reads from the history what was published since this call, so
// that the window between a stream's join and the confirmation loses
// nothing. It implements actors.Interest and never blocks.
func (r *Relay) Join(channel string) {
	if r.cfg.Interest == InterestAll {
		return
	}
	s := &r.want
	s.mu.Lock()
	s.since[channel] = time.Now()
	s.mark(channel)
	s.mu.Unlock()
}

// Leave tells the relay that the node's last stream on channel has gone:
// it unsubscribes. It never blocks.
func (r *Relay) Leave(channel string) {
	if r.cfg.Interest == InterestAll {
		return
	}
	s := &r.want
	s.mu.Lock()
	delete(s.since, channel)
	s.mark(channel)
	s.mu.Unlock()
}

// Listening reports whether Redis has confirmed the relay's subscription
// to channel (with InterestAll: whether the pattern subscription is up).
func (r *Relay) Listening(channel string) bool {
	if r.cfg.Interest == InterestAll {
		return r.Ready() == nil || errors.Is(r.Ready(), ErrPublishFailing)
	}
	l := r.linkOf(channel)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.confirmed[r.PubSubChannel(channel)]
	return ok
}

func (r *Relay) linkOf(channel string) *link {
	if r.sharded {
		return r.links[r.part(channel)]
	}
	return r.links[0]
}

// syncInterest turns the changes of the interest set into SUBSCRIBE and
// UNSUBSCRIBE commands (SSUBSCRIBE, SUNSUBSCRIBE when sharded). It takes
// every change pending when it wakes, so a storm of joins costs a few
// commands, each naming many channels; sharded, one per partition, since
// Redis refuses an SSUBSCRIBE across slots. Commands are written without
// waiting for their answers: the receive loops read the confirmations.
func (r *Relay) syncInterest() {
	defer r.loop.Done()
	// Joins made meanwhile wait in s.dirty, their wake-up in s.wake.
	select {
	case <-r.probed:
	case <-r.ctx.Done():
		return
	}
	s := &r.want
	for {
		select {
		case <-s.wake:
		case <-r.ctx.Done():
			return
		}
		type change struct{ sub, unsub []string }
		changes := make(map[*link]*change)
		s.mu.Lock()
		for ch := range s.dirty {
			l := r.linkOf(ch)
			c := changes[l]
			if c == nil {
				c = &change{}
				changes[l] = c
			}
			if _, ok := s.since[ch]; ok {
				c.sub = append(c.sub, r.PubSubChannel(ch))
			} else {
				c.unsub = append(c.unsub, r.PubSubChannel(ch))
			}
		}
		clear(s.dirty)
		s.mu.Unlock()
		for l, c := range changes {
			l.apply(c.sub, c.unsub)
		}
	}
}

// subscribeChunk bounds the channels named in one command, so that no
// command is unbounded (a classic SUBSCRIBE may name any channels).
const subscribeChunk = 1000

// link is one subscription connection and its receive loop: the only one
// on a single Redis or with classic pub/sub, one per partition with
// sharded pub/sub (created with its partition's first channel).
type link struct {
	r    *Relay
	part int

	mu        sync.Mutex
	ps        *redis.PubSub
	sent      map[string]struct{} // the pub/sub channels it subscribes to
	confirmed map[string]struct{} // those Redis confirmed on the current connection
	running   bool
	state     atomic.Pointer[linkState]
}

// apply records the changes and writes them to the connection, if there is
// one; a connection made later subscribes to everything in sent.
func (l *link) apply(sub, unsub []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var add, drop []string
	for _, c := range unsub {
		if _, ok := l.sent[c]; ok {
			delete(l.sent, c)
			delete(l.confirmed, c)
			drop = append(drop, c)
		}
	}
	for _, c := range sub {
		if _, ok := l.sent[c]; !ok {
			l.sent[c] = struct{}{}
			add = append(add, c)
		}
	}
	if !l.running && len(l.sent) > 0 {
		l.start()
		return // its first connection subscribes to sent
	}
	if l.ps == nil {
		return
	}
	ctx := l.r.ctx
	for c := range chunks(drop) {
		// An error means the connection broke: the receive loop sees it,
		// and the next connection subscribes to sent only.
		if l.r.sharded {
			_ = l.ps.SUnsubscribe(ctx, c...)
		} else {
			_ = l.ps.Unsubscribe(ctx, c...)
		}
	}
	for c := range chunks(add) {
		if l.r.sharded {
			_ = l.ps.SSubscribe(ctx, c...)
		} else {
			_ = l.ps.Subscribe(ctx, c...)
		}
	}
}

func chunks(s []string) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(s) > 0 {
			n := min(len(s), subscribeChunk)
			if !yield(s[:n]) {
				return
			}
			s = s[n:]
		}
	}
}

// start begins the receive loop; l.mu is held.
func (l *link) start() {
	if l.running || l.r.closed.Load() {
		return
	}
	l.running = true
	l.state.Store(&linkState{err: errConnecting})
	l.r.loop.Add(1)
	go l.receive()
}

// connect returns a fresh subscription, registered for Shutdown to close and
// subscribed to everything the link wants, or nil once the relay is closed.
// A link that wants nothing yet (the single link at start) pings, so that
// Redis's answer tells that the connection works.
func (l *link) connect() *redis.PubSub {
	r := l.r
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.closed.Load() {
		return nil
	}
	ctx := r.ctx
	l.ps = r.sub.Subscribe(ctx) // no channel yet: does not dial
	l.confirmed = map[string]struct{}{}
	// Their errors are those of the first dial; ReceiveTimeout dials again.
	switch {
	case r.cfg.Interest == InterestAll:
		_ = l.ps.PSubscribe(ctx, r.pattern)
	case len(l.sent) == 0:
		_ = l.ps.Ping(ctx)
	default:
		all := make([]string, 0, len(l.sent))
		for c := range l.sent {
			all = append(all, c)
		}
		for c := range chunks(all) {
			if r.sharded {
				_ = l.ps.SSubscribe(ctx, c...)
			} else {
				_ = l.ps.Subscribe(ctx, c...)
			}
		}
	}
	return l.ps
}

// confirm records Redis's confirmation of a subscription, and reports
// whether the link still wants it.
func (l *link) confirm(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.sent[name]; !ok {
		return false
	}
	l.confirmed[name] = struct{}{}
	return true
}

// kicked reports whether Redis ended a subscription the link still wants:
// a sharded channel whose slot moved to another node. Only a new
// connection, routed by the new slot map, gets it back.
func (l *link) kicked(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.sent[name]
	return ok
}

// clockSkew is, for each partition, how far the Redis clock (which dates
// stream ids) is from the node's, measured by the write probe. It turns the
// node-local time of a join into the stream position from which the
// relay must read what the subscription may have missed.
type clockSkew struct {
	parts []skewPart
}

type skewPart struct {
	known  atomic.Bool
	offset atomic.Int64 // Redis minus local, µs
	slack  atomic.Int64 // half the probe's round trip, µs
}

// unknownSkew is how far back a join reads while the probe has not
// measured the Redis clock (its first probe failed: subscriptions wait for
// that one): the clocks of a fleet are expected to agree within it.
const unknownSkew = time.Second

func (c *clockSkew) measure(part int, val any, sent, got time.Time) {
	t, _ := val.([]any)
	if len(t) != 2 || part >= len(c.parts) {
		return
	}
	s1, _ := t[0].(string)
	s2, _ := t[1].(string)
	sec, err1 := strconv.ParseInt(s1, 10, 64)
	usec, err2 := strconv.ParseInt(s2, 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	mid := sent.UnixMicro() + got.Sub(sent).Microseconds()/2
	p := &c.parts[part]
	p.offset.Store(sec*1e6 + usec - mid)
	p.slack.Store(got.Sub(sent).Microseconds()/2 + 1000)
	p.known.Store(true)
}

// point is the stream position that Redis, on partition part, gave the
// local time t, minus the measure's uncertainty: every event published
// after t has a position at or after it.
func (c *clockSkew) point(part int, t time.Time) actors.Pos {
	us := t.UnixMicro() - unknownSkew.Microseconds()
	if part < len(c.parts) && c.parts[part].known.Load() {
		p := &c.parts[part]
		us = t.UnixMicro() + p.offset.Load() - p.slack.Load()
	}
	if us < 0 {
		us = 0
	}
	return actors.Pos{Ms: uint64(us / 1000)}
}
