package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/squall-sse/squall/sse"
)

// Presence and disconnects read the tree, as [Hub.OpenStreams] does: the
// router picks a page of its channels and asks each channel actor for its
// subscribers, and the streams supervisor picks the streams to close among
// its children. Nothing is kept for them outside the actors that own it.

// MaxPresenceLimit bounds one page of [Hub.Presence].
const MaxPresenceLimit = 1000

// ClosedEvent is the event a stream closed by [Hub.Disconnect] gets last.
// Its data is a JSON object {"reason": ..., "retry_ms": ...}.
const ClosedEvent = ReservedEventPrefix + "closed"

// PresenceQuery asks for one page of a hub's channels, in name order.
type PresenceQuery struct {
	// Prefix keeps the channels whose name starts with it; empty keeps all.
	Prefix string
	// After keeps the channels whose name sorts after it: the Next of the
	// previous page, empty for the first.
	After string
	// Limit is the page size, 1 to [MaxPresenceLimit].
	Limit int
}

// ChannelPresence is one channel of a page and its open streams on this
// hub (subscribed or being replayed to).
type ChannelPresence struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
}

// PresencePage is one page of [Hub.Presence]. Next, when not empty, is the
// After of the next page.
type PresencePage struct {
	Channels []ChannelPresence
	Next     string
}

// presenceMsg asks the router for a page; it answers plan with the page's
// names (each channel then answers counts) and whether more follow.
type presenceMsg struct {
	q      PresenceQuery
	plan   chan presencePlan
	counts chan subsCount
}

func (*presenceMsg) IgnoreDeadLetterLogging() {}

type presencePlan struct {
	names []string
	more  bool
}

// subsMsg asks the router for one channel's subscribers: it forwards the
// query to the channel actor, or answers 0 when there is none.
type subsMsg struct {
	channel string
	reply   chan subsCount
}

func (*subsMsg) IgnoreDeadLetterLogging() {}

// subsQuery asks a channel actor for its subscriber count; i is the
// channel's place in the page.
type subsQuery struct {
	i     int
	reply chan subsCount
}

func (*subsQuery) IgnoreDeadLetterLogging() {}

type subsCount struct{ i, n int }

// answer is a channel actor's side of a presence query.
func (a *channelActor) answer(m *subsQuery) {
	m.reply <- subsCount{i: m.i, n: len(a.subs) + a.log.replays()}
}

// presence picks the page, at most q.Limit names in order, without sorting
// every channel: a page of 1000 out of 100,000 channels costs a scan of
// the map and a few thousand inserts into the page.
func (r *router) presence(ctx actor.Context, m *presenceMsg) {
	q := m.q
	page := make([]string, 0, q.Limit)
	more := false
	for name := range r.channels {
		if name <= q.After || !strings.HasPrefix(name, q.Prefix) {
			continue
		}
		if len(page) == q.Limit {
			more = true
			if name > page[len(page)-1] {
				continue
			}
			page = page[:len(page)-1]
		}
		i, _ := slices.BinarySearch(page, name)
		page = slices.Insert(page, i, name)
	}
	m.plan <- presencePlan{names: page, more: more}
	for i, name := range page {
		// Routed like a join: the channel cannot go idle with it in flight.
		r.forward(ctx, name, &subsQuery{i: i, reply: m.counts}, false)
	}
}

func (r *router) subscribers(ctx actor.Context, m *subsMsg) {
	if _, ok := r.channels[m.channel]; !ok {
		m.reply <- subsCount{}
		return
	}
	r.forward(ctx, m.channel, &subsQuery{reply: m.reply}, false)
}

// Presence returns one page of this hub's channels with their subscriber
// counts, as their actors count them when asked. It panics on a Limit out
// of range. Only the channels of this hub are listed, in cluster mode too.
func (h *Hub) Presence(ctx context.Context, q PresenceQuery) (PresencePage, error) {
	if q.Limit < 1 || q.Limit > MaxPresenceLimit {
		panic(fmt.Sprintf("actors: PresenceQuery.Limit %d out of 1..%d", q.Limit, MaxPresenceLimit))
	}
	if h.closed.Load() {
		return PresencePage{}, ErrClosed
	}
	m := &presenceMsg{q: q, plan: make(chan presencePlan, 1), counts: make(chan subsCount, q.Limit)}
	h.sys.Root.Send(h.router, m)
	var plan presencePlan
	select {
	case plan = <-m.plan:
	case <-ctx.Done():
		return PresencePage{}, ctx.Err()
	case <-h.shutDone:
		return PresencePage{}, ErrClosed
	}
	page := PresencePage{Channels: make([]ChannelPresence, len(plan.names))}
	for i, name := range plan.names {
		page.Channels[i].Channel = name
	}
	if plan.more && len(plan.names) > 0 {
		page.Next = plan.names[len(plan.names)-1]
	}
	for range plan.names {
		select {
		case c := <-m.counts:
			page.Channels[c.i].Subscribers = c.n
		case <-ctx.Done():
			// A channel that failed meanwhile never answers.
			return PresencePage{}, ctx.Err()
		case <-h.shutDone:
			return PresencePage{}, ErrClosed
		}
	}
	return page, nil
}

// Subscribers returns the number of streams of this hub on channel.
func (h *Hub) Subscribers(ctx context.Context, channel string) (int, error) {
	if h.closed.Load() {
		return 0, ErrClosed
	}
	reply := make(chan subsCount, 1)
	h.sys.Root.Send(h.router, &subsMsg{channel: channel, reply: reply})
	select {
	case c := <-reply:
		return c.n, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-h.shutDone:
		return 0, ErrClosed
	}
}

// DisconnectMatch says which streams [Hub.Disconnect] closes: those opened
// with Subject (when set) and on Channel (when set). At least one is set.
type DisconnectMatch struct {
	Subject string
	Channel string
}

func (m DisconnectMatch) matches(s *Stream) bool {
	if m.Subject != "" && s.subject != m.Subject {
		return false
	}
	return m.Channel == "" || slices.Contains(s.channels, m.Channel)
}

// DisconnectNotice is what a disconnected stream is told last: an event
// [ClosedEvent] with Reason and a "retry:" hint of Retry.
type DisconnectNotice struct {
	// Reason is shown to the client; it is JSON-encoded, so it cannot
	// break the frame.
	Reason string
	// Retry is the reconnect hint; zero sends none.
	Retry time.Duration
}

// frame encodes the notice: the event, its retry line, nothing after.
func (n DisconnectNotice) frame() []byte {
	data, _ := json.Marshal(struct {
		Reason  string `json:"reason"`
		RetryMS int64  `json:"retry_ms"`
	}{n.Reason, n.Retry.Milliseconds()})
	b, err := sse.AppendEvent(nil, sse.Event{Event: ClosedEvent, Data: data, Retry: n.Retry})
	if err != nil {
		panic("actors: DisconnectNotice: " + err.Error()) // JSON has no CR or LF
	}
	return b
}

// disconnectMsg asks the streams supervisor to close the matching streams
// of its children; it answers how many.
type disconnectMsg struct {
	match DisconnectMatch
	final []byte
	reply chan int
}

func (*disconnectMsg) IgnoreDeadLetterLogging() {}

func (a *streamsActor) disconnect(ctx actor.Context, m *disconnectMsg) {
	n := 0
	for _, pid := range ctx.Children() {
		s := a.open[pid.Id]
		if s == nil || s.abort.Load() || !m.match.matches(s) {
			continue
		}
		// After what is already queued: the client sees every event it
		// was sent, then the notice, then the end of the stream.
		ctx.Send(pid, &closeMsg{reason: Disconnected, final: m.final})
		n++
	}
	m.reply <- n
}

// Disconnect closes the streams of this hub that match, each after what it
// was already sent and the notice, and returns how many it closed. Their
// reason is [Disconnected]. It panics on an empty match.
func (h *Hub) Disconnect(ctx context.Context, match DisconnectMatch, notice DisconnectNotice) (int, error) {
	if match.Subject == "" && match.Channel == "" {
		panic("actors: Disconnect with an empty match")
	}
	if h.closed.Load() {
		return 0, ErrClosed
	}
	reply := make(chan int, 1)
	h.sys.Root.Send(h.streams, &disconnectMsg{match: match, final: notice.frame(), reply: reply})
	select {
	case n := <-reply:
		return n, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-h.shutDone:
		return 0, ErrClosed
	}
}
