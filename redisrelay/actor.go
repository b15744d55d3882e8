package redisrelay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/sse"
)

// Every message type sent to the relay actor implements
// IgnoreDeadLetterLogging: a message that reaches it after it stopped is
// normal during shutdown, and a logged dead letter would also start
// protoactor's throttle goroutine.

// inbound is a message as go-redis read it; the conversion costs nothing,
// so the receive loop hands it over without parsing or copying it.
type inbound redis.Message

func (*inbound) IgnoreDeadLetterLogging() {}

// resyncMsg says the subscription came back after being down.
type resyncMsg struct{}

func (*resyncMsg) IgnoreDeadLetterLogging() {}

var theResync = &resyncMsg{}

// confirmed says Redis confirmed the subscription to a channel: what was
// published since the node joined it, or since the last event relayed on
// it, may have been missed.
type confirmed struct{ channel string }

func (*confirmed) IgnoreDeadLetterLogging() {}

// catchUpNow is the relay actor's own message: it fetches, in one catch-up,
// for every channel confirmed since the last one.
type catchUpNow struct{}

func (*catchUpNow) IgnoreDeadLetterLogging() {}

var theCatchUpNow = &catchUpNow{}

// catchPoint is where a catch-up reads a channel's history from: after the
// last position relayed (exact: it must still be there), or from the
// position the Redis clock gave the channel's join (a time, not an entry).
type catchPoint struct {
	pos   actors.Pos
	exact bool
}

// caughtUp returns what a catch-up fetch read from the history streams.
type caughtUp struct {
	channels []caughtChannel
	gaps     int // channels whose resume point was already trimmed
	err      error
}

type caughtChannel struct {
	name   string
	events []actors.ReplayEvent
}

func (*caughtUp) IgnoreDeadLetterLogging() {}

// seenPos is the newest history position delivered on a channel.
type seenPos struct {
	pos actors.Pos
	at  time.Time
}

type heldEvent struct {
	channel string
	d       decoded
}

// relayActor decodes envelopes and hands their events to the sink, one at a
// time, in the order Redis sent them, which is the publish order on every
// node. It never blocks: decoding is CPU only and Sink.Deliver does not
// block.
//
// After a resubscribe it repairs the gap: everything published while the
// subscription was down is in the history streams, after the last position
// it delivered on each channel. It holds live events while it fetches them,
// delivers the fetched ones, then the held ones it did not already deliver,
// so each channel's order is kept and nothing is delivered twice.
type relayActor struct {
	r    *Relay
	sink Sink

	seen      map[string]seenPos
	lastPrune time.Time
	catching  int // catch-up fetches in flight
	held      []heldEvent
	// The newest position a catch-up delivered on each channel: the fetch
	// can read events whose live copies are still on their way, so live
	// events up to it are dropped until a newer one comes. Only positions
	// a catch-up delivered are skipped, so a Redis that restarts with
	// lower ids is never silenced.
	skip map[string]actors.Pos

	malformedLog throttle
	oversizeLog  throttle

	// Channels confirmed and not yet caught up; pending is set while a
	// catchUpNow is on its way, so a storm of confirmations costs one
	// catch-up.
	toCatch map[string]struct{}
	pending bool
}

// checker is a [Sink] that refuses some events before they are delivered.
// *actors.Hub is one: it refuses its heartbeat's event name and frames
// bigger than its stream queue bound. An oversize frame would reach no
// subscriber: under the disconnect policy it would cut every one of them,
// and each would resume straight into it again. The relay checks each
// event once, here where it enters the node, and delivers it checked.
type checker interface {
	Check(channel string, ev sse.Event) (actors.Checked, error)
	DeliverChecked(c actors.Checked, pos actors.Pos)
}

// throttle lets one log line through per interval and counts the rest.
type throttle struct {
	last     time.Time
	unlogged uint64
}

// due counts one event and reports whether to log now, with how many
// events the line covers.
func (t *throttle) due(every time.Duration) (bool, uint64) {
	t.unlogged++
	now := time.Now()
	if now.Sub(t.last) < every {
		return false, 0
	}
	n := t.unlogged
	t.last, t.unlogged = now, 0
	return true, n
}

func (a *relayActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *inbound:
		a.inbound(m)
	case *resyncMsg:
		a.resync(ctx)
	case *confirmed:
		if a.toCatch == nil {
			a.toCatch = map[string]struct{}{}
		}
		a.toCatch[m.channel] = struct{}{}
		if !a.pending {
			// Live events are held from now: the ones that follow the
			// confirmation must come after what the catch-up reads.
			a.pending = true
			a.catching++
			ctx.Send(ctx.Self(), theCatchUpNow)
		}
	case *catchUpNow:
		a.pending = false
		a.catchUpJoined(ctx)
		a.catching--
		a.release()
	case *caughtUp:
		a.caughtUp(m)
	case *actor.Stopped:
		// Once, on the final stop (a restart does not stop it), whoever
		// stopped it: Relay.Shutdown or the hub.
		close(a.r.stopped)
	}
}

func (a *relayActor) inbound(m *inbound) {
	channel, ok := a.r.channelOf(m.Channel)
	if !ok {
		a.reject(m.Channel, fmt.Errorf("%w: channel outside the prefix", ErrMalformed))
		return
	}
	if err := sse.ValidChannel(channel); err != nil {
		a.reject(m.Channel, fmt.Errorf("%w: %w", ErrMalformed, err))
		return
	}
	d, err := decodeEnvelope(channel, []byte(m.Payload))
	if err != nil {
		a.reject(m.Channel, err)
		return
	}
	if a.catching > 0 {
		a.held = append(a.held, heldEvent{channel, d})
		return
	}
	a.live(channel, d)
}

// live delivers an event that came by pub/sub, unless a catch-up already
// delivered it.
func (a *relayActor) live(channel string, d decoded) {
	if p, ok := a.skip[channel]; ok && !d.pos.IsZero() {
		if !p.Less(d.pos) {
			return
		}
		delete(a.skip, channel)
	}
	a.deliver(channel, d)
}

func (a *relayActor) deliver(channel string, d decoded) {
	if !d.pos.IsZero() {
		a.track(channel, d.pos)
	}
	if c, ok := a.sink.(checker); ok {
		checked, err := c.Check(channel, d.ev)
		if err != nil {
			if errors.Is(err, actors.ErrEventTooLarge) {
				a.dropOversize(a.r.head+channel, err)
			} else {
				a.reject(a.r.head+channel, fmt.Errorf("%w: %w", ErrMalformed, err))
			}
			return
		}
		c.DeliverChecked(a.r.traced(checked, d.tp), d.pos)
		return
	}
	a.sink.Deliver(channel, d.ev, d.pos)
}

// track remembers the newest position delivered on channel, for the next
// catch-up. Channels quiet for longer than history lasts are forgotten, so
// the map stays as small as the set of active channels.
func (a *relayActor) track(channel string, pos actors.Pos) {
	now := time.Now()
	if _, ok := a.seen[channel]; !ok && now.Sub(a.lastPrune) > time.Minute {
		a.prune(now)
	}
	a.seen[channel] = seenPos{pos: pos, at: now}
}

func (a *relayActor) prune(now time.Time) {
	a.lastPrune = now
	keep := a.r.cfg.HistoryTTL
	if keep <= 0 {
		keep = time.Hour
	}
	for ch, s := range a.seen {
		if now.Sub(s.at) > keep {
			delete(a.seen, ch)
			delete(a.skip, ch)
		}
	}
}

// reject counts a malformed message and logs at most once per interval,
// with how many were dropped since the last log.
func (a *relayActor) reject(channel string, err error) {
	total := a.r.malformed.Add(1)
	if ok, n := a.malformedLog.due(a.r.cfg.LogInterval); ok {
		a.r.cfg.Logger.Warn("redisrelay: malformed messages dropped", "count", n, "total", total,
			"last_channel", channel, "last_err", err)
	}
}

// dropOversize counts an event whose frame the sink's streams could never
// queue, and logs like reject.
func (a *relayActor) dropOversize(channel string, err error) {
	total := a.r.oversize.Add(1)
	if ok, n := a.oversizeLog.due(a.r.cfg.LogInterval); ok {
		a.r.cfg.Logger.Warn("redisrelay: oversize events dropped", "count", n, "total", total,
			"last_channel", channel, "last_err", err)
	}
}

// Oversize counts the events read from Redis and dropped since the relay
// started because the sink refused them as too large (actors.ErrEventTooLarge):
// delivered, they would have reached no subscriber.
func (r *Relay) Oversize() uint64 { return r.oversize.Load() }

func (a *relayActor) resync(ctx actor.Context) {
	if a.r.cfg.History < 0 {
		return // no history: nothing to catch up from
	}
	a.prune(time.Now())
	if len(a.seen) == 0 {
		return
	}
	points := make(map[string]catchPoint, len(a.seen))
	for ch, s := range a.seen {
		points[ch] = catchPoint{pos: s.pos, exact: true}
	}
	a.fetch(ctx, points)
}

// catchUpJoined reads what the channels confirmed since the last time may
// have missed: from the last position relayed on each, or, when later or
// none, from its join. With history off there is nothing to read.
func (a *relayActor) catchUpJoined(ctx actor.Context) {
	if len(a.toCatch) == 0 || a.r.cfg.History < 0 {
		clear(a.toCatch)
		return
	}
	points := make(map[string]catchPoint, len(a.toCatch))
	for ch := range a.toCatch {
		since, ok := a.r.want.joinedAt(ch)
		if !ok {
			continue // left meanwhile
		}
		p := catchPoint{pos: a.r.clock.point(a.r.part(ch), since)}
		if s, ok := a.seen[ch]; ok && !s.pos.Less(p.pos) {
			p = catchPoint{pos: s.pos, exact: true}
		}
		points[ch] = p
	}
	a.toCatch = nil // a storm's map is not kept
	if len(points) > 0 {
		a.fetch(ctx, points)
	}
}

// fetch reads the history after points off the actor, holding live events
// until it is back (see caughtUp).
func (a *relayActor) fetch(ctx actor.Context, points map[string]catchPoint) {
	a.catching++
	self, r := ctx.Self(), a.r
	r.async.Add(1)
	go func() {
		defer r.async.Done()
		r.sys.Root.Send(self, r.catchUp(r.ctx, points))
	}()
}

func (a *relayActor) caughtUp(m *caughtUp) {
	a.catching--
	if m.err != nil {
		a.r.cfg.Logger.Warn("redisrelay: could not fetch the events missed while Redis was away", "err", m.err)
	}
	if m.gaps > 0 {
		a.r.cfg.Logger.Warn("redisrelay: the history no longer holds the last event this node relayed; "+
			"events published while the subscription was down may be missing from its live streams", "channels", m.gaps)
	}
	for _, c := range m.channels {
		for _, e := range c.events {
			// An earlier catch-up may have delivered it already.
			if s, ok := a.seen[c.name]; !ok || s.pos.Less(e.Pos) {
				a.deliver(c.name, decoded{ev: e.Event, pos: e.Pos})
				if a.skip == nil {
					a.skip = map[string]actors.Pos{}
				}
				a.skip[c.name] = e.Pos
			}
		}
	}
	a.release()
}

// release delivers the live events held during catch-ups, once none is left
// in flight.
func (a *relayActor) release() {
	if a.catching > 0 {
		return
	}
	for i, h := range a.held {
		a.live(h.channel, h.d)
		a.held[i] = heldEvent{}
	}
	a.held = a.held[:0]
	if cap(a.held) > 1024 {
		a.held = nil
	}
}

// catchUp reads, for each channel, the history after its point, retrying
// while Redis is still coming back.
func (r *Relay) catchUp(ctx context.Context, points map[string]catchPoint) *caughtUp {
	names := make([]string, 0, len(points))
	for ch := range points {
		names = append(names, ch)
	}
	bo := backoff{next: minBackoff}
	var err error
	for range 8 {
		var out *caughtUp
		if out, err = r.fetchAfter(ctx, names, points); err == nil {
			return out
		}
		if !bo.wait(ctx) {
			break
		}
	}
	return &caughtUp{err: err}
}

// Catch-up reads at most fetchBatch channels per round trip and at most
// fetchPage entries per channel per command, so that no command makes Redis
// read a whole history at once (a history can hold History events of up to
// 1 MiB each); a channel whose page came back full is read on from its last
// entry in the next round.
const (
	fetchBatch = 256
	fetchPage  = 100
)

func (r *Relay) fetchAfter(ctx context.Context, names []string, points map[string]catchPoint) (*caughtUp, error) {
	out := &caughtUp{channels: make([]caughtChannel, 0, len(names))}
	type pending struct {
		idx   int    // in out.channels
		start string // XRANGE start: the point, inclusive, then exclusive past the last entry read
		first bool
	}
	todo := make([]pending, 0, len(names))
	for _, ch := range names {
		out.channels = append(out.channels, caughtChannel{name: ch})
		p := points[ch]
		todo = append(todo, pending{idx: len(out.channels) - 1, start: p.pos.String(), first: p.exact})
	}
	for len(todo) > 0 {
		batch := todo[:min(fetchBatch, len(todo))]
		todo = todo[len(batch):]
		cmds := make([]*redis.XMessageSliceCmd, len(batch))
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, pd := range batch {
				// Inclusive at first: finding the point itself shows nothing
				// between it and the next entry was trimmed.
				cmds[i] = p.XRangeN(ctx, r.StreamKey(out.channels[pd.idx].name), pd.start, "+", fetchPage)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("redisrelay: catch-up: %w", err)
		}
		for i, pd := range batch {
			c := &out.channels[pd.idx]
			msgs := cmds[i].Val()
			full := len(msgs) == fetchPage
			if pd.first {
				if len(msgs) > 0 && msgs[0].ID == pd.start {
					msgs = msgs[1:]
				} else if len(msgs) > 0 {
					out.gaps++
				}
			}
			for _, m := range msgs {
				ev, err := entryEvent(c.name, m)
				if err != nil {
					return nil, fmt.Errorf("redisrelay: catch-up: %w", err)
				}
				c.events = append(c.events, ev)
			}
			if full {
				todo = append(todo, pending{idx: pd.idx, start: "(" + cmds[i].Val()[fetchPage-1].ID})
			}
		}
	}
	return out, nil
}

// entryEvent is parseEntry for an entry read with go-redis's XRANGE.
func entryEvent(channel string, m redis.XMessage) (actors.ReplayEvent, error) {
	fields := make([]any, 0, 4)
	for k, v := range m.Values {
		fields = append(fields, k, v)
	}
	return parseEntry(channel, []any{m.ID, fields})
}
