package actors

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/squall-sse/squall/httpedge/sse"
)

// StreamOptions says what a new stream subscribes to.
type StreamOptions struct {
	// Channels are the channels the stream joins. Callers validate names.
	Channels []string
	// LastEventID, when not empty, resumes every channel strictly after it
	// (a composite id as sent to multi-channel streams resumes each channel
	// from its own point).
	LastEventID string
}

// Stream is one open SSE response, served by its connection actor. Its
// methods are safe for concurrent use.
type Stream struct {
	hub      *Hub
	pid      *actor.PID
	w        http.ResponseWriter
	rc       *http.ResponseController
	channels []string
	private  *actor.PID // the stream's own channel, for direct publishing

	// Shared with the channel actors that feed the stream: what is queued
	// for it and not yet written or dropped.
	queuedFrames atomic.Int64
	queuedBytes  atomic.Int64
	dropped      atomic.Int64

	abort  atomic.Bool  // stop without writing anything more
	reason atomic.Int32 // the first CloseReason recorded wins
	done   chan struct{}
}

// setReason records why the stream ends unless a reason is already set.
func (s *Stream) setReason(r CloseReason) { s.reason.CompareAndSwap(0, int32(r)) }

// kill stops the stream without writing anything more.
func (s *Stream) kill(r CloseReason) {
	s.setReason(r)
	s.abort.Store(true)
	s.hub.sys.Root.Send(s.pid, theFlush)
}

// Done is closed once the connection actor has stopped; from then on nothing
// touches the ResponseWriter.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Reason says why the stream ended; zero while it is open.
func (s *Stream) Reason() CloseReason { return CloseReason(s.reason.Load()) }

// Dropped counts the frames a drop policy discarded for this stream.
func (s *Stream) Dropped() int64 { return s.dropped.Load() }

// Wait blocks until the stream ends and returns why. When ctx (the request's
// context) ends first, the client is gone: the stream stops without another
// write, and Wait still returns only after the actor has stopped, so the
// handler never returns while the ResponseWriter may be written.
func (s *Stream) Wait(ctx context.Context) CloseReason {
	select {
	case <-s.done:
	case <-ctx.Done():
		s.kill(ClientGone)
		<-s.done
	}
	return s.Reason()
}

// Close ends the stream after everything already published to it is written,
// optionally sending a reconnect hint first (retry > 0).
func (s *Stream) Close(retry time.Duration) {
	var final []byte
	if retry > 0 {
		final = sse.AppendRetry(nil, retry)
	}
	s.hub.sys.Root.Send(s.pid, &closeMsg{reason: Closed, final: final})
}

// Publish sends ev to this stream alone. It needs a stream opened with
// [Hub.OpenDirect]; the event's data is raw bytes (see sse.MarshalData).
func (s *Stream) Publish(ctx context.Context, ev sse.Event) error {
	if s.private == nil {
		panic("actors: Stream.Publish on a stream not opened with OpenDirect")
	}
	if err := ev.Validate(); err != nil {
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

// pendingFrame is a frame waiting for the next flush; live frames were
// counted against the stream's bound by the channel that sent them, replayed
// ones only by their bytes.
type pendingFrame struct {
	f    *frame
	live bool
}

// connActor is the only writer of its stream's ResponseWriter.
type connActor struct {
	s         *Stream
	heartbeat time.Duration
	timeout   time.Duration
	policy    Overflow
	maxFrames int64
	maxBytes  int64
	obs       Observer

	pending   []pendingFrame
	scheduled bool // a flushNow is queued
	buf       []byte
	lastWrite time.Time

	// For streams on several channels: the escaped names and the escaped
	// last id of each, which make the composite id.
	escNames []string
	escIDs   []string
}

func newConnActor(s *Stream, cfg *Config) *connActor {
	c := &connActor{
		s:         s,
		heartbeat: cfg.Heartbeat,
		timeout:   cfg.WriteTimeout,
		policy:    cfg.Overflow,
		maxFrames: int64(cfg.MaxQueueFrames),
		maxBytes:  int64(cfg.MaxQueueBytes),
		obs:       cfg.Observer,
	}
	if len(s.channels) > 1 {
		c.escNames = make([]string, len(s.channels))
		c.escIDs = make([]string, len(s.channels))
		for i, ch := range s.channels {
			c.escNames[i] = url.QueryEscape(ch)
		}
	}
	return c
}

func (c *connActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Stopping:
		c.leave()
		return
	case *actor.Stopped:
		c.pending = nil
		c.obs.StreamClosed(c.s.Reason())
		c.s.hub.streamClosed(c.s)
		close(c.s.done)
		return
	case actor.SystemMessage, actor.AutoReceiveMessage:
		return
	}
	if c.s.abort.Load() {
		c.stop(ctx, ClientGone)
		return
	}
	switch m := ctx.Message().(type) {
	case *frame:
		c.enqueue(ctx, m, true)
	case *replayBatch:
		for _, f := range m.frames {
			c.s.queuedBytes.Add(int64(len(f.b)))
			c.enqueue(ctx, f, false)
		}
	case *flushNow:
		c.scheduled = false
		if err := c.flush(nil); err != nil {
			c.stop(ctx, writeReason(err))
		}
	case *closeMsg:
		if err := c.flush(m.final); err != nil {
			c.stop(ctx, writeReason(err))
			return
		}
		c.stop(ctx, m.reason)
	}
}

func (c *connActor) stop(ctx actor.Context, r CloseReason) {
	c.s.setReason(r)
	c.s.abort.Store(true)
	ctx.Stop(ctx.Self())
}

func (c *connActor) enqueue(ctx actor.Context, f *frame, live bool) {
	if f.beat && (len(c.pending) > 0 || time.Since(c.lastWrite) < c.heartbeat/2) {
		// Another channel of this stream, or data, kept it alive already.
		c.release(f, live)
		return
	}
	c.pending = append(c.pending, pendingFrame{f, live})
	if c.policy == DropOldest {
		c.dropOldest()
	}
	if !c.scheduled {
		c.scheduled = true
		ctx.Send(ctx.Self(), theFlush)
	}
}

// dropOldest discards the oldest unwritten frames while the stream is over
// its bound, keeping the newest.
func (c *connActor) dropOldest() {
	n := 0
	for n < len(c.pending)-1 && c.over() {
		c.release(c.pending[n].f, c.pending[n].live)
		n++
	}
	if n > 0 {
		clear(c.pending[:n])
		c.pending = c.pending[n:]
		c.s.dropped.Add(int64(n))
		c.obs.Dropped(n)
	}
}

func (c *connActor) over() bool {
	return (c.maxFrames > 0 && c.s.queuedFrames.Load() > c.maxFrames) ||
		(c.maxBytes > 0 && c.s.queuedBytes.Load() > c.maxBytes)
}

// release takes a frame off the stream's queued counters.
func (c *connActor) release(f *frame, live bool) {
	if live {
		c.s.queuedFrames.Add(-1)
	}
	c.s.queuedBytes.Add(-int64(len(f.b)))
}

// flush writes every pending frame, then final, in one write and one flush,
// under the write deadline.
func (c *connActor) flush(final []byte) error {
	if len(c.pending) == 0 && len(final) == 0 {
		return nil
	}
	buf := c.buf[:0]
	events := 0
	var oldest time.Time
	for _, p := range c.pending {
		f := p.f
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
	buf = append(buf, final...)
	for _, p := range c.pending {
		c.release(p.f, p.live)
	}
	clear(c.pending)
	c.pending = c.pending[:0]

	err := c.s.rc.SetWriteDeadline(time.Now().Add(c.timeout))
	if errors.Is(err, http.ErrNotSupported) {
		err = nil
	}
	if err == nil {
		_, err = c.s.w.Write(buf)
	}
	if err == nil {
		err = c.s.rc.Flush()
	}
	c.lastWrite = time.Now()
	if events > 0 {
		c.obs.Flushed(events, c.lastWrite.Sub(oldest))
	}
	// Keep a modest buffer for the next flush; drop one a burst inflated.
	if cap(buf) > 64<<10 {
		buf = nil
	}
	c.buf = buf
	return err
}

func writeReason(err error) CloseReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return WriteTimeout
	}
	return ClientGone
}

// leave tells every channel the stream was on that it is gone.
func (c *connActor) leave() {
	root := c.s.hub.sys.Root
	if c.s.private != nil {
		root.Send(c.s.private, &leaveMsg{s: c.s})
		return
	}
	for _, ch := range c.s.channels {
		root.Send(c.s.hub.router, &leaveMsg{channel: ch, s: c.s})
	}
}
