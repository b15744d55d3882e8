package client

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/squall-sse/squall/sse"
)

// Defaults used when the matching [Config] field is zero.
const (
	DefaultInitialRetry = time.Second
	DefaultMaxRetry     = 30 * time.Second
	DefaultJitter       = 0.5
)

// minFailureRetry is the first wait after a failure when InitialRetry is
// negative (reconnect at once): without a floor, a server that keeps
// failing would see the client loop as fast as it can dial.
const minFailureRetry = time.Millisecond

// Config configures a [Stream]. The zero value works: the default HTTP
// client, retries from 1s doubling to 30s with up to 50% jitter, forever.
type Config struct {
	// HTTPClient sends the requests. Nil means [http.DefaultClient]. Its
	// Timeout, if any, bounds the whole response, body included, so a
	// client with a Timeout cuts every stream after that time; leave it
	// zero and bound the connect with the transport's dial and
	// response-header timeouts instead.
	HTTPClient *http.Client

	// Header holds extra request headers (Authorization, Cookie, ...),
	// copied into every request. The client sets Accept, Cache-Control and
	// Last-Event-ID itself; an Accept given here wins.
	Header http.Header

	// Token, if set, is called before every request (the first and each
	// reconnect) for the bearer token sent as "Authorization: Bearer
	// <token>", which replaces any Authorization in Header. So a stream
	// closed when its token expires comes back with a fresh one. refused
	// is "" except after the server answered 401 to the token the last
	// request carried: it is that token, which a source that caches tokens
	// must not return again. The Stream asks once per 401 and retries at
	// once; a second 401 in a row ends it.
	//
	// An error fails the attempt, which is retried like a network error
	// (see MaxAttempts); [DisconnectInfo.Err] wraps it with [ErrToken]. A
	// token that is empty, over [MaxTokenBytes] or not made of the
	// RFC 6750 token characters ends the Stream with an error wrapping
	// ErrToken. It runs on the goroutine that calls Connect or Next, with
	// a context that Close and the caller's context cancel.
	Token func(ctx context.Context, refused string) (string, error)

	// LastEventID is the resume point sent as Last-Event-ID on the first
	// request. Empty means none. It must not contain CR, LF or NUL.
	LastEventID string

	// InitialRetry is the reconnection time until the server sends a
	// "retry:" field, which replaces it for the rest of the Stream's life.
	// It is the wait after a stream that delivered events ends and after
	// the first failure; each further consecutive failure doubles it. Zero
	// means DefaultInitialRetry (1s). Negative means reconnect at once after
	// a stream that delivered events, with failures backing off from 1ms.
	InitialRetry time.Duration

	// MaxRetry caps the doubled wait, before jitter. It never lowers the
	// server's "retry:" hint or a Retry-After, which are honoured as given.
	// Zero means DefaultMaxRetry (30s); negative means no cap.
	MaxRetry time.Duration

	// Jitter adds a random extra of up to Jitter times the wait (0.5: up to
	// 50% more), so that clients cut off together do not come back
	// together. It only ever lengthens the wait, so the server's hint stays
	// a minimum. Zero means DefaultJitter (0.5); negative disables jitter.
	Jitter float64

	// MaxAttempts is how many consecutive failed attempts end the Stream
	// with an error wrapping [ErrGaveUp]. An attempt fails when it gets no
	// stream, or a stream that ends before delivering an event; a stream
	// that delivered events resets the count. Zero means retry forever.
	// Negative means never reconnect: the first stream's end, or the first
	// failure, is final, and Next returns its error (io.EOF when the server
	// closed the stream).
	MaxAttempts int

	// IdleTimeout closes a connection when Next has waited this long for
	// bytes (an event, a comment, anything) without getting one, and
	// reconnects. Time spent by the caller between calls to Next does not
	// count. It catches a peer that vanished without closing the TCP
	// connection; set it to a few times the server's heartbeat interval
	// (the Squall hub sends one every 15s by default). Zero or negative
	// means no idle limit.
	IdleTimeout time.Duration

	// MaxEventBytes bounds the data of one event, and one line. Past it
	// the Stream ends with an error wrapping [sse.ErrEventTooLong] or
	// [sse.ErrLineTooLong]: reconnecting would meet the same event again.
	// Zero means the parser's defaults ([sse.DefaultMaxEventBytes] for an
	// event, [sse.DefaultMaxLineBytes] for a line); negative means no limit.
	MaxEventBytes int

	// Logger receives connection-level logs: connects at Debug, lost
	// connections and the wait before the next attempt at Info. Nothing is
	// logged per event. Nil discards them.
	Logger *slog.Logger

	// OnConnect, if set, is called each time an attempt opens a stream.
	// See [ConnectInfo] for when hooks run.
	OnConnect func(ConnectInfo)

	// OnDisconnect, if set, is called once at the end of every attempt:
	// when an open stream ends or an attempt fails to open one.
	OnDisconnect func(DisconnectInfo)
}

// ConnectInfo describes a stream that just opened.
//
// Hooks run synchronously on the goroutine that called [Connect],
// [Stream.Next] or [Stream.Close], never two at once. They must not call
// Next; they may call [Stream.Stats] and [Stream.Close].
type ConnectInfo struct {
	// Attempt numbers the HTTP requests of the Stream, from 1.
	Attempt int64
	// LastEventID is the Last-Event-ID header this request sent, "" if none.
	LastEventID string
}

// DisconnectInfo describes the end of an attempt.
type DisconnectInfo struct {
	// Attempt is the attempt that ended, as in [ConnectInfo].
	Attempt int64
	// Err says why: io.EOF when the server ended the stream, a
	// [*StatusError], [ErrIdleTimeout], a network error, an error
	// wrapping [ErrToken], the caller's context error, [ErrClosed]. When
	// Final is set it is the error that
	// Next returns.
	Err error
	// Connected reports whether this attempt had opened a stream.
	Connected bool
	// Events counts the events this attempt delivered.
	Events int64
	// Delay is the wait before the next attempt, jitter and Retry-After
	// included, counted from when OnDisconnect returns. Zero when Final,
	// and when the next attempt is made at once (after the caller's
	// context interrupted Next).
	Delay time.Duration
	// Final reports that no attempt follows: the Stream is done.
	Final bool
}

// settings is a Config with its defaults applied.
type settings struct {
	client       *http.Client
	header       http.Header
	token        func(ctx context.Context, refused string) (string, error)
	initialRetry time.Duration
	maxRetry     time.Duration // < 0: no cap
	jitter       float64
	maxAttempts  int
	idleTimeout  time.Duration
	maxEvent     int
	maxLine      int
	log          *slog.Logger
	onConnect    func(ConnectInfo)
	onDisconnect func(DisconnectInfo)
}

func (c *Config) settings() settings {
	s := settings{
		client:       c.HTTPClient,
		header:       c.Header.Clone(),
		token:        c.Token,
		initialRetry: c.InitialRetry,
		maxRetry:     c.MaxRetry,
		jitter:       c.Jitter,
		maxAttempts:  c.MaxAttempts,
		idleTimeout:  c.IdleTimeout,
		log:          c.Logger,
		onConnect:    c.OnConnect,
		onDisconnect: c.OnDisconnect,
	}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	if s.header == nil {
		s.header = make(http.Header)
	}
	switch {
	case s.initialRetry == 0:
		s.initialRetry = DefaultInitialRetry
	case s.initialRetry < 0:
		s.initialRetry = 0
	}
	if s.maxRetry == 0 {
		s.maxRetry = DefaultMaxRetry
	}
	switch {
	case s.jitter == 0:
		s.jitter = DefaultJitter
	case s.jitter < 0:
		s.jitter = 0
	}
	if s.idleTimeout < 0 {
		s.idleTimeout = 0
	}
	switch {
	case c.MaxEventBytes > 0:
		// A line holds a field name and its value, so it needs a little
		// more room than the data it carries.
		s.maxEvent, s.maxLine = c.MaxEventBytes, c.MaxEventBytes+64
	case c.MaxEventBytes < 0:
		s.maxEvent, s.maxLine = -1, -1
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// newParser applies the configured limits to a parser of r.
func (s *settings) newParser(r io.Reader) *sse.Parser {
	p := sse.NewParser(r)
	p.MaxEventBytes = s.maxEvent
	p.MaxLineBytes = s.maxLine
	return p
}
