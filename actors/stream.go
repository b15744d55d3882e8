package actors

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/squall-sse/squall/sse"
)

// StreamOptions says what a new stream subscribes to.
type StreamOptions struct {
	// Channels are the channels the stream joins. Callers validate names.
	Channels []string
	// LastEventID, when not empty, resumes every channel strictly after it
	// (a composite id as sent to multi-channel streams resumes each channel
	// from its own point).
	LastEventID string
	// Subject names who opened the stream (a token's "sub"), for
	// [Hub.Disconnect]; empty for none.
	Subject string
}

// Stream is one open SSE response, served by its connection actor. Its
// methods are safe for concurrent use.
type Stream struct {
	hub      *Hub
	pid      *actor.PID
	w        http.ResponseWriter
	ctl      writeControl // w's flush and write deadline
	channels []string
	subject  string     // StreamOptions.Subject
	direct   bool       // opened by OpenDirect
	private  *actor.PID // a direct stream's own channel, set before Open returns

	// out is shared with the channel actors that feed the stream, which
	// reach it only through offer, offerControl and offerReplay; the rest
	// of its methods are the connection actor's.
	out outbox // frames published to the stream and not yet written

	// The connection actor and its mailbox live in the Stream. A broadcast
	// wakes thousands of streams one after another, each cold in the
	// cache, and each object a wake-up and its turn reach through a
	// pointer is another wait on memory: through the PID, a send reached
	// the mailbox by way of three (the PID, its cached Process and the
	// ActorProcess). Here the channel's push, the wake-up and the turn
	// stay within one object. Wake-ups go straight to mb, which is what
	// protoactor's ActorProcess does with a user message (see wake).
	mb   mailbox
	conn connActor

	abort  atomic.Bool  // stop without writing anything more; set by kill, Wait and the actor
	reason atomic.Int32 // the first CloseReason recorded wins
	done   chan struct{}

	// ended is set by end, under cutMu, once the connection actor has
	// stopped: from then on the server may reuse the connection, so cut
	// must not touch its deadline. cutMu is taken only by cut, end, OnDone
	// and runOnDone, never across a write or a send.
	cutMu   sync.Mutex
	ended   bool
	onDone  func() // run once Done is closed; guarded by cutMu
	doneRan bool   // onDone has run or Done is closed; guarded by cutMu
}

// setReason records why the stream ends unless a reason is already set.
func (s *Stream) setReason(r CloseReason) { s.reason.CompareAndSwap(0, int32(r)) }

// The methods below, offer, offerControl, offerReplay and kill, are the
// only ways another actor (a channel) acts on a stream it does not own;
// see "Concurrency" in the package doc for the locks they take.

// offer queues a live frame under the overflow policy and wakes the
// connection actor if no wake-up is on its way. crowded says the frame goes
// to many streams at once. dropped is how many frames a drop policy
// discarded; kick means the stream passed its bound under Disconnect: the
// caller must forget it and kill it (SlowConsumer).
func (s *Stream) offer(f *frame, crowded bool) (dropped int, kick bool) {
	wake, dropped, kick := s.out.push(f, crowded)
	if wake {
		s.wake()
	}
	return dropped, kick
}

// offerControl queues a frame of the hub's own: a reset event, whatever
// the bound, or a heartbeat (f.beat), only into an idle outbox.
func (s *Stream) offerControl(f *frame) {
	var wake bool
	if f.beat {
		wake = s.out.pushIdle(f)
	} else {
		wake = s.out.pushControl(f)
	}
	if wake {
		s.wake()
	}
}

// offerReplay queues as many of fs as fit in the replay share and returns
// how many; the stream writes them at once, without waiting out the flush
// gap, since its channel (from) waits for the write to hand over more.
func (s *Stream) offerReplay(fs []*frame, from *actor.PID) int {
	n, wake := s.out.pushReplay(fs, from)
	if wake {
		s.mb.PostUserMessage(theMore)
	}
	return n
}

// kill stops the stream without writing anything more.
func (s *Stream) kill(r CloseReason) {
	s.setReason(r)
	s.abort.Store(true)
	if r == SlowConsumer {
		s.cut()
	}
	s.wake()
}

// cut interrupts a write in progress. A slow consumer's connection actor is
// usually blocked writing to a client that stopped reading; without the cut
// it would hold the connection until its write deadline, long after the
// stream was dropped. It holds cutMu so that it never touches a connection
// the server may already have reused (see end).
func (s *Stream) cut() {
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	if !s.ended && s.ctl != nil {
		_ = s.ctl.SetWriteDeadline(time.Now())
	}
}

// end marks the stream's connection as no longer its own: from now on
// the server may reuse it, and cut must not touch its deadline. Only the
// connection actor calls it, once, when it has stopped.
func (s *Stream) end() {
	s.cutMu.Lock()
	s.ended = true
	s.cutMu.Unlock()
}

// wake tells the connection actor that its outbox has frames. It posts to
// the actor's mailbox, as a send to its PID does once it has looked the
// actor up; a wake-up after the actor stopped is dropped by its context.
func (s *Stream) wake() { s.mb.PostUserMessage(theFlush) }

// Done is closed once the connection actor has stopped; from then on nothing
// touches the ResponseWriter.
func (s *Stream) Done() <-chan struct{} { return s.done }

// OnDone arranges for f to run once Done is closed, on the goroutine that
// closes it (at once, on the caller's, if it already is), so that a server
// can end a wait of its own (a read on the connection, say) without a
// goroutine parked on Done. f must not block. Call it at most once.
func (s *Stream) OnDone(f func()) {
	s.cutMu.Lock()
	if !s.doneRan {
		s.onDone = f
		s.cutMu.Unlock()
		return
	}
	s.cutMu.Unlock()
	f()
}

// runOnDone runs the OnDone function, once, after Done is closed.
func (s *Stream) runOnDone() {
	s.cutMu.Lock()
	f := s.onDone
	s.doneRan, s.onDone = true, nil
	s.cutMu.Unlock()
	if f != nil {
		f()
	}
}

// Reason says why the stream ended; zero while it is open.
func (s *Stream) Reason() CloseReason { return CloseReason(s.reason.Load()) }

// Dropped counts the frames a drop policy discarded for this stream.
func (s *Stream) Dropped() int64 { return s.out.droppedCount() }

// Wait blocks until the stream ends and returns why. When ctx (the request's
// context) ends first, the client is gone: the stream stops without another
// write, and Wait still returns only after the actor has stopped, so the
// handler never returns while the ResponseWriter may be written.
func (s *Stream) Wait(ctx context.Context) CloseReason {
	select {
	case <-s.done:
	case <-ctx.Done():
		// No reason is recorded here: net/http cancels ctx from inside a
		// failed write, before the actor records why the write failed (a
		// timeout, say). The actor records ClientGone itself when it
		// finds nothing else.
		s.abort.Store(true)
		s.wake()
		<-s.done
	}
	return s.Reason()
}

// Close ends the stream after everything already published to it is written,
// optionally sending a reconnect hint first (retry > 0). Its reason is
// [Closed].
func (s *Stream) Close(retry time.Duration) { s.CloseWith(Closed, retry) }

// CloseWith is Close with the reason the stream reports (and the Observer
// counts), such as [Shutdown] for a drain or [Expired] for a token that
// ran out.
func (s *Stream) CloseWith(reason CloseReason, retry time.Duration) {
	var final []byte
	if retry > 0 {
		final = sse.AppendRetry(nil, retry)
	}
	s.hub.sys.Root.Send(s.pid, &closeMsg{reason: reason, final: final})
}

// Publish sends ev to this stream alone. It needs a stream opened with
// [Hub.OpenDirect]; the event's data is raw bytes (see sse.MarshalData).
func (s *Stream) Publish(ctx context.Context, ev sse.Event) error {
	if !s.direct {
		panic("actors: Stream.Publish on a stream not opened with OpenDirect")
	}
	// The same screen as a channel publish: a reserved name or a frame over
	// the queue bound would forge a control event or cut the stream.
	if err := s.hub.CheckEvent(ev); err != nil {
		return err
	}
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	_, err := s.hub.request(ctx, s.private, &publishMsg{ev: ev})
	if errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	return err
}

// connActor is the only writer of its stream's ResponseWriter. It is a
// child of the streams supervisor; a direct stream's own channel actor is
// its child, so the two end together and Done closes only once both are
// gone.
type connActor struct {
	s          *Stream
	direct     bool
	opened     chan error // answered once started, then nil
	heartbeat  time.Duration
	timeout    time.Duration
	obs        Observer
	spare      []*frame // the outbox's previous slice, reused
	lastWrite  time.Time
	noDeadline bool      // the writer cannot take a write deadline
	deadline   time.Time // the write deadline set last
	started    bool      // the response headers have been flushed

	gap        time.Duration // Config.FlushGap; <= 0: none
	fixedGap   bool          // Config.FixedFlushGap: every stream waits out the gap
	behindTill time.Time     // adaptive gap: coalesce until then (see wait)
	gapWake    time.Time     // when the hub's gap clock wakes the actor next; zero: not asked
	lastEvents time.Time     // the last write that carried events

	// For streams on several channels: the escaped names and the escaped
	// last id of each, which make the composite id.
	escNames []string
	escIDs   []string
}

// newConnActor readies s's connection actor, s.conn, and its mailbox,
// s.mb, and returns the props that spawn them.
func newConnActor(s *Stream, h *Hub, direct bool, opened chan error) *actor.Props {
	cfg := &h.cfg
	s.out.policy, s.out.maxFrame, s.out.maxBytes = cfg.Overflow, cfg.MaxQueueFrames, cfg.MaxQueueBytes
	s.conn = connActor{s: s, direct: direct, opened: opened, heartbeat: cfg.Heartbeat, timeout: cfg.WriteTimeout, obs: cfg.Observer, gap: cfg.FlushGap, fixedGap: cfg.FixedFlushGap}
	c := &s.conn
	if len(s.channels) > 1 {
		c.escNames = make([]string, len(s.channels))
		c.escIDs = make([]string, len(s.channels))
		for i, ch := range s.channels {
			c.escNames[i] = url.QueryEscape(ch)
		}
	}
	h.initMailbox(&s.mb)
	return h.props.Clone(actor.WithProducer(func() actor.Actor { return c }), actor.WithMailbox(func() actor.Mailbox { return &s.mb }))
}

// writeControl is what a connection actor needs of its ResponseWriter
// besides Write. httpedge's taken-over streams provide it themselves;
// any other writer gets it through an http.ResponseController, whose
// every call looks the methods up anew.
type writeControl interface {
	FlushError() error
	SetWriteDeadline(time.Time) error
}

// controller is writeControl through an http.ResponseController.
type controller struct{ *http.ResponseController }

func (c controller) FlushError() error { return c.Flush() }

func newWriteControl(w http.ResponseWriter) writeControl {
	if wc, ok := w.(writeControl); ok {
		return wc
	}
	return controller{http.NewResponseController(w)}
}

func (c *connActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		c.start(ctx)
		return
	case *actor.Stopping:
		// No reason yet: its supervisor stopped it (a failure, a drain
		// past its deadline, the hub's shutdown).
		c.s.setReason(Shutdown)
		c.s.out.close()
		c.leave()
		return
	case *actor.Stopped:
		c.s.end()
		c.obs.StreamClosed(c.s.Reason())
		close(c.s.done)
		c.s.runOnDone()
		return
	case actor.SystemMessage, actor.AutoReceiveMessage:
		return
	}
	if c.s.abort.Load() {
		c.stop(ctx, ClientGone)
		return
	}
	switch m := ctx.Message().(type) {
	case *flushNow:
		// One clock reading serves the whole turn: the gap, the yield, the
		// deadline and the write's time (a turn is one write, and a
		// reading each was about a tenth of a broadcast's time outside
		// the write itself, in process).
		now := time.Now()
		if c.wait(now) {
			return
		}
		if c.yield(now) {
			now = time.Now()
		}
		c.flushSome(ctx, now)
	case *flushMore:
		// The rest of what one flush could not take: no gap, no yield.
		c.flushSome(ctx, time.Now())
	case *closeMsg:
		for more := true; more; {
			var err error
			if more, err = c.flush(m.final, time.Now()); err != nil {
				c.stop(ctx, writeReason(err))
				return
			}
		}
		c.stop(ctx, m.reason)
	}
}

// start publishes the actor's PID (and a direct stream's own channel) on
// the Stream, then answers Hub.open, which hands the Stream out only then.
func (c *connActor) start(ctx actor.Context) {
	c.s.pid = ctx.Self()
	if c.direct {
		ch := newChannelActor(c.s.hub, "", true, nil)
		c.s.private = ctx.Spawn(ch.props())
		ctx.Send(c.s.private, &joinMsg{s: c.s})
	}
	c.opened <- nil
	c.opened = nil
}

// flushSome writes at most flushBytes of what is queued and, when more is
// left, asks itself to go on: a stream with a long queue writes it in
// bounded pieces, and other messages (a close, a client gone) get in
// between.
func (c *connActor) flushSome(ctx actor.Context, now time.Time) {
	more, err := c.flush(nil, now)
	if err != nil {
		c.stop(ctx, writeReason(err))
		return
	}
	if more {
		c.s.mb.PostUserMessage(theMore)
	}
	// Channels replaying into this stream push their next page once there
	// is room (see outbox.pushReplay).
	for _, ch := range c.s.out.takeWaiters() {
		ctx.Send(ch, &refillMsg{s: c.s})
	}
}

// coalesceHold is how long a stream that fell behind writes at most once
// per gap before it tries writing each event at once again. Much longer
// than a gap, so that a stream under a rate the process cannot serve with
// a write per event spends little time finding that out again; short
// enough that a burst's gap is gone soon after the burst.
const coalesceHold = time.Second

// coalesceKeep is how many events one write of a stream that fell behind
// must carry for it to keep coalescing past coalesceHold: a stream fed
// that many events a gap (200 a second at 20 ms) would, written event by
// event again, cost what made it fall behind; one fed fewer tries writing
// each at once again when the hold ends.
const coalesceKeep = 4

// wait reports whether the flush must wait for the end of the flush gap,
// and arms the wake-up that ends it. The outbox stays marked as woken
// meanwhile, so frames that arrive during the gap cost no mailbox message.
//
// Unless the gap is fixed, only a stream that fell behind waits: one whose
// wake-up, sent with the first frame of an empty outbox, found more frames
// queued by the time it ran. That is backpressure, not a timer every event
// pays: the process takes longer to reach the stream than the stream's
// events take to come, and writing each event as it comes would only
// make that worse (a write per event and subscriber is what saturated
// 1,000 streams at 1,000 events/s; see docs/proxies.md). Such a stream
// then writes at most once per gap for coalesceHold, renewed by each write
// that carries coalesceKeep events or more (the gap's own wake-ups, which
// find the gap's frames queued, say nothing about the process).
func (c *connActor) wait(now time.Time) bool {
	if c.gap <= 0 {
		return false
	}
	// Only writes of events open a gap: the headers and heartbeats must not
	// hold back the first event or a replay.
	left := c.gap - now.Sub(c.lastEvents)
	if !c.fixedGap {
		// Only a wake-up within a gap of the last write and outside the
		// hold says something new: one after a quiet gap does not, nor
		// does the gap's own wake-up, which comes at left <= 0.
		if left > 0 && !now.Before(c.behindTill) && c.s.out.backlog() {
			c.behindTill = now.Add(coalesceHold)
		}
		if !now.Before(c.behindTill) {
			return false
		}
	}
	if left <= 0 {
		return false
	}
	// A wake-up already asked for, not yet due and not before the gap's
	// end, is the one this gap needs; one due before it finds the gap
	// still open and asks again.
	if end := now.Add(left); !(now.Before(c.gapWake) && !c.gapWake.Before(end)) {
		c.gapWake = c.s.hub.gaps.wakeAt(c.s, end)
	}
	return true
}

// yield lets every goroutine already waiting to run go first, when the
// stream's frames come from a channel with many subscribers that publishes
// faster than its streams are written (crowded; see channelActor.fanout).
//
// Such a publish wakes its subscribers' connection actors one after
// another while the channel actor is still fanning out, and under load more
// publishes follow: yielding once lets what they queue join this write.
// With nothing else to run it returns at once. Measured on fanout flat out
// to 10,000 streams: 5 to 7 events per write instead of 2, and about twice
// the deliveries per second. A stream on small channels has nothing to
// gain and would only wait (many-channels, 2 streams per channel: p99
// 8 ms instead of 4.7 flat out). Nor does a stream that wrote no event for
// yieldWindow, or one woken by a broadcast that came alone: yielding would
// only schedule each of its thousands of connection actors twice.
//
// It reports whether it yielded, and so whether now is out of date.
func (c *connActor) yield(now time.Time) bool {
	if now.Sub(c.lastEvents) < yieldWindow && c.s.out.isCrowded() {
		runtime.Gosched()
		return true
	}
	return false
}

// yieldWindow is how recently a stream must have written an event for a
// wake-up from a crowded channel to yield: well above the time between
// writes of a stream under a sustained fan-out (about 130 ms for 10,000
// streams flat out on 2 cores, at 6 events a write).
const yieldWindow = time.Second

func (c *connActor) stop(ctx actor.Context, r CloseReason) {
	c.s.setReason(r)
	c.s.abort.Store(true)
	ctx.Stop(ctx.Self())
}

// flushBytes bounds what one flush takes from the outbox, and so the
// buffer it builds: a stream whose client stalls holds this much in its
// write buffer, not its whole queue.
const flushBytes = 64 << 10

// flush writes up to flushBytes of what is queued (at least one frame),
// then, if that was all, final, in one write and one flush, under the write
// deadline. more says frames are left for another flush (final was not
// written). now is the time the write begins.
func (c *connActor) flush(final []byte, now time.Time) (more bool, err error) {
	frames, more := c.s.out.take(c.spare, flushBytes)
	defer func() {
		clear(frames)
		c.spare = frames
	}()
	if len(frames) == 1 && frames[0].beat && now.Sub(c.lastWrite) < c.heartbeat/2 {
		// Another channel of this stream kept it alive already.
		frames = frames[:0]
	}
	if len(frames) == 0 && len(final) == 0 {
		if c.started {
			return more, nil
		}
	}
	c.started = true
	bp := flushBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	events := 0
	traced := false
	var oldest time.Time
	for _, f := range frames {
		traced = traced || f.trace != nil
		if !f.beat {
			events++
			if oldest.IsZero() {
				oldest = f.at
			}
		}
		if c.escNames == nil || f.idLen == 0 {
			buf = append(buf, f.b...)
			continue
		}
		for i, ch := range c.s.channels {
			if ch == f.channel {
				c.escIDs[i] = f.escID
			}
		}
		buf = append(buf, "id: "...)
		buf = compositeID(buf, c.escNames, c.escIDs)
		buf = append(buf, '\n')
		buf = append(buf, f.b[f.idLen:]...)
	}
	if !more {
		buf = append(buf, final...)
	}

	if !c.noDeadline && c.deadline.Sub(now) < c.timeout {
		// The deadline is moved only once less than the timeout is left,
		// to at most a quarter more: every write still gets the whole
		// timeout, and a stream written often sets it once per quarter
		// of it, not per write (a timer update that cost about a twentieth
		// of a broadcast's CPU).
		c.deadline = now.Add(c.timeout + c.timeout/4)
		err = c.s.ctl.SetWriteDeadline(c.deadline)
		if errors.Is(err, http.ErrNotSupported) {
			// Not a network connection (a recorder, an in-process writer):
			// nothing can stall, and asking again would allocate an error.
			c.noDeadline, err = true, nil
		}
	}
	if err == nil {
		_, err = c.s.w.Write(buf)
	}
	if err == nil {
		err = c.s.ctl.FlushError()
	}
	if traced && err == nil {
		delivered(frames)
	}
	c.lastWrite = now
	if events > 0 {
		if events >= coalesceKeep && c.lastWrite.Before(c.behindTill) {
			c.behindTill = c.lastWrite.Add(coalesceHold)
		}
		c.lastEvents = c.lastWrite
		// A frame queued after the turn read the clock is younger than
		// now: its age is zero, not negative.
		c.obs.Flushed(events, max(c.lastWrite.Sub(oldest), 0))
	}
	// An idle stream holds no buffer: it goes back to a pool shared by all
	// streams, unless a burst inflated it.
	if cap(buf) <= 64<<10 {
		*bp = buf
		flushBuffers.Put(bp)
	}
	return more, err
}

var flushBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func writeReason(err error) CloseReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return WriteTimeout
	}
	return ClientGone
}

// leave tells every channel the stream was on that it is gone. A direct
// stream's own channel is its child and stops with it.
func (c *connActor) leave() {
	root := c.s.hub.sys.Root
	for _, ch := range c.s.channels {
		root.Send(c.s.hub.router, &leaveMsg{channel: ch, s: c.s})
	}
}
