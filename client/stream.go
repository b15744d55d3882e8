package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/squall-sse/squall/sse"
)

// MessageEvent is the name Next gives an event sent without an "event:"
// field, as a browser's EventSource dispatches it.
const MessageEvent = "message"

// ResetEvent is the event a Squall hub sends first when it cannot resume
// from the Last-Event-ID it got (unknown, or older than its history). Its
// data is a JSON reason; the stream goes on live, so events were missed.
const ResetEvent = "reset"

// Stream is one subscription to an event stream: a sequence of HTTP
// connections that resumes with Last-Event-ID after each one ends.
//
// Read it with [Stream.Next] or [Stream.Events] from one goroutine at a
// time; [Stream.Stats] and [Stream.Close] are safe from any goroutine.
type Stream struct {
	url string
	cfg settings

	// base is cancelled by Close with cause ErrClosed; every request's
	// context derives from it.
	base   context.Context
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	busy   bool  // a goroutine is inside Connect or Next, and owns the fields below
	closed bool  // Close was called
	conn   *conn // the open connection; Close takes it only while !busy
	stats  Stats

	lastID      string        // the resume point: the id of the last dispatched event
	serverRetry time.Duration // the last "retry:" hint; 0 if none
	fails       int           // consecutive failed attempts
	sent        string        // the token the last request carried
	refused     string        // the token a 401 refused, until a stream opens
	next        time.Time     // no attempt before this time
	err         error         // the final error, returned by every later Next
}

// conn is one open response.
type conn struct {
	attempt int64
	ctx     context.Context
	cancel  context.CancelCauseFunc
	body    io.ReadCloser
	parser  *sse.Parser
	idle    *time.Timer // nil without IdleTimeout
	events  int64
}

func (c *conn) close() {
	if c.idle != nil {
		c.idle.Stop()
	}
	c.body.Close()
	c.cancel(nil)
}

// Stats is a snapshot of a Stream's counters.
type Stats struct {
	// Attempts counts HTTP requests made, successful or not.
	Attempts int64
	// Connects counts attempts that opened a stream.
	Connects int64
	// Reconnects counts the streams opened after the first one.
	Reconnects int64
	// Events counts the events Next returned.
	Events int64
	// LastEventID is the resume point: the id of the last event returned
	// (Config.LastEventID before any).
	LastEventID string
	// Retry is the current reconnection time: the server's last "retry:"
	// hint, else Config.InitialRetry with its default applied.
	Retry time.Duration
	// Connected reports whether a connection is open right now.
	Connected bool
}

// Connect subscribes to the event stream at rawURL (http or https) and
// returns once the first connection is open, retrying failed attempts as
// cfg says.
//
// ctx bounds only the connecting, like [net.Dialer.DialContext]: once
// Connect has returned, cancelling it does nothing. Each call to Next
// takes its own context.
//
// It returns the error that ended the attempts: ctx's error, a
// [*StatusError] (401 for example, with the server's reason),
// [ErrNoContent], [ErrContentType], or an error wrapping [ErrGaveUp].
// Errors never include the URL, which may carry an access token.
func Connect(ctx context.Context, rawURL string, cfg Config) (*Stream, error) {
	if err := sse.ValidID(cfg.LastEventID); err != nil {
		return nil, fmt.Errorf("client: Config.LastEventID: %w", err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, hideURL(err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: unsupported URL scheme %q (want http or https)", u.Scheme)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Stream{url: rawURL, cfg: cfg.settings(), lastID: cfg.LastEventID}
	s.base, s.cancel = context.WithCancelCause(context.Background())
	s.stats.LastEventID = cfg.LastEventID
	s.stats.Retry = s.cfg.initialRetry
	s.busy = true
	err = s.open(ctx)
	s.leave()
	if err != nil {
		s.cancel(ErrClosed)
		return nil, err
	}
	return s, nil
}

// Next returns the next event, reconnecting as needed.
//
// Events keep the [sse.Event] fields: ID is the last event ID (it persists
// from event to event, as in a browser), Data is the event's own copy,
// Retry the "retry:" sent in the event's block. Event is the name, with ""
// turned into [MessageEvent]; named events such as [ResetEvent] come like
// any other.
//
// When a connection ends, Next waits the reconnection time (the server's
// "retry:" hint, else Config.InitialRetry, doubled on consecutive
// failures, plus jitter, at least any Retry-After) and reconnects with
// Last-Event-ID, all within the call.
//
// If ctx ends first, Next returns ctx's error. If that happens while it
// reads, the connection is closed; the next call reconnects at once from
// the last event returned, so no event is lost or repeated (as far as the
// server's history allows). A context that is never done, such as
// context.Background, costs nothing; with any other, each call registers
// a [context.AfterFunc] (measured: about 250ns and 3 allocations), so a
// hot loop may prefer Background and [Stream.Close] to stop.
//
// A final error ends the Stream and is returned by every later call: a
// [*StatusError] for a status that is not retried, [ErrNoContent],
// [ErrContentType], an error wrapping [ErrGaveUp], or any error once
// Config.MaxAttempts is negative (io.EOF when the server closed the
// stream). After Close, Next returns [ErrClosed].
//
// Next panics if called while another call to Next is in progress.
func (s *Stream) Next(ctx context.Context) (sse.Event, error) {
	if err := s.enter(); err != nil {
		return sse.Event{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return sse.Event{}, err
	}
	for {
		if s.conn == nil {
			if err := s.open(ctx); err != nil {
				return sse.Event{}, err
			}
		}
		ev, retry, err := s.read(ctx)
		if !retry {
			return ev, err
		}
	}
}

// Events returns an iterator over the Stream's events, for a range loop.
// Each step calls Next(ctx). The sequence ends after yielding the first
// error, except the io.EOF of a Stream that does not reconnect (see
// Config.MaxAttempts), which ends it quietly.
// Breaking out of the loop leaves the Stream open: close it.
func (s *Stream) Events(ctx context.Context) iter.Seq2[sse.Event, error] {
	return func(yield func(sse.Event, error) bool) {
		for {
			ev, err := s.Next(ctx)
			// Only a bare io.EOF is the end of a one-connection Stream; an
			// ErrGaveUp that wraps one is a failure.
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(sse.Event{}, err)
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// Close ends the Stream: it closes the connection and makes a Next in
// progress return [ErrClosed] promptly, without waiting for it. It is safe
// to call from any goroutine, more than once; it always returns nil.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel(ErrClosed)
	var c *conn
	if !s.busy && s.conn != nil {
		c, s.conn = s.conn, nil
		s.stats.Connected = false
	}
	s.mu.Unlock()
	if c != nil {
		// Nobody is inside Next, so this goroutine may run the hook.
		c.close()
		s.ended(context.Background(), c, ErrClosed, 0, true)
	}
	return nil
}

// Stats returns a snapshot of the Stream's counters. It is safe to call
// from any goroutine, hooks included.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Stream) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy {
		panic("client: concurrent calls to Stream.Next")
	}
	if s.closed {
		return ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	s.busy = true
	return nil
}

// leave ends the ownership that enter took. A Close that came meanwhile
// left the connection to this goroutine.
func (s *Stream) leave() {
	s.mu.Lock()
	s.busy = false
	var c *conn
	if s.closed && s.conn != nil {
		c, s.conn = s.conn, nil
		s.stats.Connected = false
	}
	s.mu.Unlock()
	if c != nil {
		c.close()
		s.ended(context.Background(), c, ErrClosed, 0, true)
	}
}

// open makes attempts until one opens a stream, or the Stream ends, or
// ctx does.
func (s *Stream) open(ctx context.Context) error {
	for {
		if err := s.wait(ctx); err != nil {
			return err
		}
		n, err := s.attempt(ctx)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrClosed):
			s.ended(ctx, &conn{attempt: n}, ErrClosed, 0, true)
			return ErrClosed
		case errors.Is(err, errInterrupted):
			s.ended(ctx, &conn{attempt: n}, ctx.Err(), 0, false)
			return ctx.Err()
		}
		if err := s.failed(ctx, &conn{attempt: n}, err); err != nil {
			return err
		}
	}
}

// wait sleeps until the next attempt is due.
func (s *Stream) wait(ctx context.Context) error {
	d := time.Until(s.next)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.base.Done():
		return ErrClosed
	}
}

// attempt sends one request. On success s.conn holds the new connection.
// The error is ErrClosed or errInterrupted when Close or ctx cut it short.
func (s *Stream) attempt(ctx context.Context) (int64, error) {
	s.mu.Lock()
	s.stats.Attempts++
	n := s.stats.Attempts
	s.mu.Unlock()

	cctx, cancel := context.WithCancelCause(s.base)
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { cancel(errInterrupted) })
	}
	c, err := s.request(cctx, cancel, n)
	if stop != nil && !stop() {
		// The callback may still be on its way: cancel here too, so that
		// the cause is settled before it is read.
		cancel(errInterrupted)
	}
	if cause := context.Cause(cctx); cause != nil {
		if c != nil {
			c.close()
		}
		cancel(nil)
		return n, cause
	}
	if err != nil {
		cancel(nil)
		return n, err
	}

	s.refused = ""
	s.mu.Lock()
	s.conn = c
	s.stats.Connects++
	s.stats.Reconnects = s.stats.Connects - 1
	s.stats.Connected = true
	s.mu.Unlock()
	s.cfg.log.LogAttrs(ctx, slog.LevelDebug, "sse client connected",
		slog.Int64("attempt", n), slog.String("last_event_id", s.lastID))
	if s.cfg.onConnect != nil {
		s.cfg.onConnect(ConnectInfo{Attempt: n, LastEventID: s.lastID})
	}
	return n, nil
}

func (s *Stream) request(ctx context.Context, cancel context.CancelCauseFunc, n int64) (*conn, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, hideURL(err)
	}
	req.Header = s.cfg.header.Clone()
	if s.cfg.token != nil {
		tok, err := s.cfg.token(ctx, s.refused)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrToken, err)
		}
		if err := checkToken(tok); err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		s.sent = tok
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/event-stream")
	}
	// As the HTML spec asks of browsers: no cached copy of a live stream.
	req.Header.Set("Cache-Control", "no-cache")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	resp, err := s.cfg.client.Do(req)
	if err != nil {
		return nil, hideURL(err)
	}
	if err := checkResponse(resp, time.Now()); err != nil {
		resp.Body.Close()
		return nil, err
	}
	c := &conn{attempt: n, ctx: ctx, cancel: cancel, body: resp.Body}
	var r io.Reader = resp.Body
	if d := s.cfg.idleTimeout; d > 0 {
		c.idle = time.AfterFunc(d, func() { cancel(ErrIdleTimeout) })
		c.idle.Stop() // the reader runs it while it waits
		r = &idleReader{r: r, timer: c.idle, d: d}
	}
	if s.lastID != "" {
		r = newSeedReader(s.lastID, r)
	}
	c.parser = s.cfg.newParser(r)
	return c, nil
}

// read returns the next event of the open connection. retry reports that
// the connection ended and a new one is due; err is then nil.
func (s *Stream) read(ctx context.Context) (ev sse.Event, retry bool, err error) {
	c := s.conn
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.cancel(errInterrupted) })
	}
	ev, err = c.parser.Next()
	interrupted := stop != nil && !stop()
	if interrupted {
		c.cancel(errInterrupted)
	}
	if r := c.parser.Retry(); r > 0 && r != s.serverRetry {
		s.serverRetry = r
		s.mu.Lock()
		s.stats.Retry = r
		s.mu.Unlock()
	}

	if err == nil {
		c.events++
		s.fails = 0
		// Only a dispatched event moves the resume point: the parser's
		// buffer may hold the id of an event cut off with its connection.
		s.lastID = ev.ID
		if ev.Event == "" {
			ev.Event = MessageEvent
		}
		s.mu.Lock()
		s.stats.Events++
		s.stats.LastEventID = ev.ID
		s.mu.Unlock()
		if interrupted {
			// The event is whole, so deliver it; the connection is gone.
			s.drop(c)
			s.ended(ctx, c, ctx.Err(), 0, false)
		}
		return ev, false, nil
	}

	cause := context.Cause(c.ctx) // before drop, which cancels c.ctx
	s.drop(c)
	switch {
	case errors.Is(cause, ErrClosed):
		s.ended(ctx, c, ErrClosed, 0, true)
		return sse.Event{}, false, ErrClosed
	case interrupted || errors.Is(cause, errInterrupted):
		s.ended(ctx, c, ctx.Err(), 0, false)
		return sse.Event{}, false, ctx.Err()
	case cause != nil:
		err = cause // ErrIdleTimeout
	}
	if err := s.failed(ctx, c, err); err != nil {
		return sse.Event{}, false, err
	}
	return sse.Event{}, true, nil
}

// drop forgets the open connection and closes it.
func (s *Stream) drop(c *conn) {
	s.mu.Lock()
	s.conn = nil
	s.stats.Connected = false
	s.mu.Unlock()
	c.close()
	// Reconnect at once unless failed sets a wait.
	s.next = time.Time{}
}

// failed handles the end of attempt c by err: it decides whether the
// Stream goes on, and when. It returns the final error, or nil to retry.
func (s *Stream) failed(ctx context.Context, c *conn, err error) error {
	if s.cfg.token != nil && s.refused == "" && s.sent != "" && unauthorized(err) {
		// The token may have expired since the source handed it out: ask
		// for another and retry at once. This is not a failed attempt; a
		// second 401 in a row is, and a final one.
		s.refused = s.sent
		s.ended(ctx, c, err, 0, false)
		s.next = time.Time{}
		return nil
	}
	if c.events == 0 {
		s.fails++
	}
	var fin error
	switch {
	case final(err), s.cfg.maxAttempts < 0:
		fin = err
	case s.cfg.maxAttempts > 0 && s.fails >= s.cfg.maxAttempts:
		fin = fmt.Errorf("%w (%d in a row): %w", ErrGaveUp, s.fails, err)
	}
	if fin != nil {
		s.err = fin
		s.ended(ctx, c, fin, 0, true)
		return fin
	}
	base := s.cfg.initialRetry
	if s.serverRetry > 0 {
		base = s.serverRetry
	}
	delay := backoff(base, s.fails, s.cfg.maxRetry, retryAfterOf(err), s.cfg.jitter, rand.Float64())
	s.ended(ctx, c, err, delay, false)
	// The wait starts once the hook has returned, so a slow hook does not
	// shorten it: the next attempt comes at least delay after the hook.
	s.next = time.Now().Add(delay)
	return nil
}

// ended reports the end of attempt c to the log and the OnDisconnect hook.
// c.parser is nil when the attempt opened no stream.
func (s *Stream) ended(ctx context.Context, c *conn, err error, delay time.Duration, fin bool) {
	info := DisconnectInfo{
		Attempt:   c.attempt,
		Err:       err,
		Connected: c.parser != nil,
		Events:    c.events,
		Delay:     delay,
		Final:     fin,
	}
	// A lost connection is news to an operator; the end of the Stream is
	// the caller's to report, and so is its own cancellation.
	level, msg := slog.LevelInfo, "sse client disconnected"
	if fin || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		level = slog.LevelDebug
	}
	if fin {
		msg = "sse client stopped"
	}
	s.cfg.log.LogAttrs(ctx, level, msg,
		slog.Int64("attempt", info.Attempt), slog.Any("err", err),
		slog.Bool("connected", info.Connected), slog.Int64("events", info.Events),
		slog.Duration("delay", delay), slog.String("last_event_id", s.lastID))
	if s.cfg.onDisconnect != nil {
		s.cfg.onDisconnect(info)
	}
}
