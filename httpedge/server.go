package httpedge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/client/browser"
	"github.com/squall-sse/squall/internal/tracing"
	"github.com/squall-sse/squall/sse"
)

// Config configures a [Server]. Only Hub is required.
type Config struct {
	// Hub serves the streams and takes the publishes, in memory and in
	// cluster mode alike (a hub in cluster mode publishes through its
	// actors.Cluster).
	Hub *actors.Hub
	// Ready reports readiness for /readyz (the relay's subscription in
	// cluster mode). Nil means always ready, until draining.
	Ready func() error
	// MaxBody is the largest publish body accepted, in bytes. Zero means
	// 1 MiB; negative means no limit.
	MaxBody int64
	// MaxChannels is how many channels one stream may join. Zero means 16.
	MaxChannels int
	// Logger gets one line per stream open and close. Nil discards.
	Logger *slog.Logger

	// Auth, when set, requires a token (see [Auth], [Claims]) on /events
	// and /publish. Nil serves everyone.
	Auth *Auth
	// CORSOrigins lists the origins whose pages may call the API from a
	// browser, each "scheme://host[:port]" (sent credentials) or "*" (any
	// origin, without credentials). Empty: same-origin pages only.
	CORSOrigins []string
	// MaxStreams bounds the streams open at once (503 above). Zero means
	// DefaultMaxStreams; negative means no limit.
	MaxStreams int
	// MaxStreamsPerIP bounds the streams open at once from one client
	// address (429 above). Zero or negative means no limit.
	MaxStreamsPerIP int
	// TrustProxy takes the client address from the last X-Forwarded-For
	// hop, for the per-IP limit and the logs. Set it only behind a proxy
	// that appends to that header (nginx: $proxy_add_x_forwarded_for).
	TrustProxy bool
	// Metrics, when set, counts the edge's refusals and is served at
	// GET /metrics. Pass the same Metrics to the hub as its Observer.
	Metrics *Metrics
	// Demo serves the demo page at GET / (and its assets under /demo/).
	Demo bool
	// Dependencies are checked by /readyz (503 naming the ones down) and,
	// with [Metrics.ObserveDependencies], served as squall_dependency_up.
	Dependencies []Dependency
	// PublishLimits bound the rate of publishes per token subject and per
	// client address. The zero value limits nothing.
	PublishLimits PublishLimits
	// AdminSecret, when set, serves the admin API under /admin/ (see
	// admin.go) to requests with "Authorization: Bearer <AdminSecret>".
	// At least MinAdminSecret bytes. Empty: no admin routes (404).
	AdminSecret string
	// ClusterAdmin, when set, makes the admin API cluster-wide (see
	// admin.go): redisrelay.Admin in cluster mode. Nil: node-local.
	ClusterAdmin ClusterAdmin
	// TracerProvider, when set, traces every POST /publish to its fanout
	// and first delivery (see docs/observability.md). Nil: no tracing, at
	// no cost.
	TracerProvider trace.TracerProvider
}

// Server is the hub's HTTP API: GET /events, POST /publish, GET /healthz,
// GET /readyz and the browser client at GET /squall.js, plus GET /metrics
// and the demo page at GET / when configured.
type Server struct {
	cfg         Config
	mux         *http.ServeMux
	handler     http.Handler // mux, behind CORS when origins are configured
	draining    atomic.Bool
	auth        *authenticator // nil: auth off
	cors        *cors
	crossOrigin *http.CrossOriginProtection
	streams     *streams
	metrics     *Metrics
	rates       publishRates
	tracer      *tracing.Tracer // nil: tracing off
}

// New returns a Server. It panics if cfg.Hub is nil, if cfg.Auth has no
// secret, or if an origin fails [ValidOrigin].
func New(cfg Config) *Server {
	if cfg.Hub == nil {
		panic("httpedge: Config.Hub is nil")
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxChannels <= 0 {
		cfg.MaxChannels = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), metrics: cfg.Metrics,
		cors: newCORS(cfg.CORSOrigins), crossOrigin: newCrossOrigin(cfg.CORSOrigins),
		streams: newStreams(cfg.MaxStreams, cfg.MaxStreamsPerIP), rates: newPublishRates(cfg.PublishLimits),
		tracer: tracing.New(cfg.TracerProvider)}
	if cfg.Auth != nil {
		s.auth = newAuthenticator(cfg.Auth)
	}
	s.handler = s.mux
	if s.cors.enabled() {
		s.handler = s.cors.wrap(s.mux)
	}
	s.route("/events", http.MethodGet, s.events)
	s.route("/publish", http.MethodPost, s.traced("/publish", s.countPublish(s.publish)))
	s.route("/publish/batch", http.MethodPost, s.traced("/publish/batch", s.countPublish(s.publishBatch)))
	s.route("/healthz", http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.route("/readyz", http.MethodGet, s.readyz)
	for _, p := range browser.Paths() { // GET /squall.js: the browser client (GET and HEAD)
		s.mux.Handle(p, browser.Handler())
	}
	if cfg.Metrics != nil {
		cfg.Metrics.observeRates(s.rates)
		s.route("/metrics", http.MethodGet, cfg.Metrics.Handler().ServeHTTP)
	}
	if cfg.Demo {
		s.mountDemo()
	}
	if cfg.AdminSecret != "" {
		s.mountAdmin()
	}
	return s
}

// Handle mounts an extra handler on the server's mux (pprof, an
// application's own endpoints).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// StartDraining turns /readyz to 503 and refuses new streams, so a load
// balancer moves clients elsewhere before the streams are closed.
func (s *Server) StartDraining() {
	s.draining.Store(true)
	s.streams.startDraining()
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "draining")
		return
	}
	if s.unready(w) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// events serves GET /events. An HTTP/1.1 stream is taken over from
// net/http once open (see takeover.go) and its handler returns. Otherwise
// the goroutine that serves a stream waits in Wait for as long as the
// client stays, and a goroutine's stack only ever shrinks back while less
// than a quarter of it is in use, which net/http's own frames below the
// handler already exceed. So its stack stays at the deepest point it ever
// reached: opening a stream (token checks, logging, cloning headers) can go
// deeper than net/http alone, which fits in 4 KB. The opening runs on a
// short-lived goroutine instead, so that it leaves nothing on the stack of
// a waiting handler.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if refuseStream(w, r) {
		return
	}
	var o *openStream
	onOwnStack(func() { o = s.openStream(w, r) })
	if o == nil {
		return
	}
	if o.raw != nil {
		s.serveTakenOver(o)
		return
	}
	defer s.closeStream(o)
	o.reason = o.stream.Wait(r.Context())
}

// onOwnStack runs f on a new goroutine and waits for it; a panic in f is
// raised again in the caller, where net/http handles it as usual.
func onOwnStack(f func()) {
	var p any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { p = recover() }()
		f()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}

// openStream is an open stream's bookkeeping, kept off the waiting frame.
type openStream struct {
	raw        *rawStream // the connection, when the stream was taken over from net/http
	stream     *actors.Stream
	slot       *slot
	stopExpiry func()
	start      time.Time
	attrs      []any
	reason     actors.CloseReason
}

// openStream answers everything that refuses a stream, and otherwise opens
// it (headers written) and returns it; nil means the response is done.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request) *openStream {
	channels, err := s.channels(r)
	if err != nil {
		if errors.Is(err, errTooManyChannels) {
			s.metrics.limitRejected(limitChannels)
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return nil
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId")
	}
	if err := sse.ValidID(lastID); err != nil || len(lastID) > sse.MaxID {
		writeError(w, http.StatusBadRequest, "invalid Last-Event-ID: it must be at most 8 KiB without CR, LF or NUL")
		return nil
	}
	claims, _, ok := s.authenticate(w, r)
	if !ok {
		return nil
	}
	for _, ch := range channels {
		if claims != nil && !claims.CanSubscribe(ch) {
			s.forbidden(w, r, claims, "subscribe", ch)
			return nil
		}
	}
	ip := clientIP(r, s.cfg.TrustProxy)
	sl := s.admit(w, r, ip)
	if sl == nil {
		return nil
	}
	// A stream lives past http.Server's ReadTimeout: it must not end when
	// the deadline for reading the request passes. net/http's background
	// read (which cancels r.Context() when the client leaves) clears the
	// deadline as it starts, in Go 1.26; clearing it here keeps that true
	// whatever a future net/http does. The write deadline stays per flush.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	setStreamHeaders(w.Header(), r)
	out := http.ResponseWriter(w)
	raw := takeOver(w, r)
	if raw != nil {
		out = raw
	} else {
		w.WriteHeader(http.StatusOK)
	}
	stream, err := s.cfg.Hub.Open(out, actors.StreamOptions{Channels: channels, LastEventID: lastID, Subject: claims.subject()})
	if err != nil {
		s.streams.release(sl)
		// End the stream with a hint to come back.
		_, _ = out.Write(sse.AppendRetry(nil, time.Second))
		if raw != nil {
			raw.finish(true)
		}
		return nil
	}
	sl.attach(stream)
	o := &openStream{
		raw:        raw,
		stream:     stream,
		slot:       sl,
		stopExpiry: s.closeAtExpiry(stream, claims),
		start:      time.Now(),
		attrs:      s.logAttrs(r, ip, channels, claims),
	}
	s.cfg.Logger.Info("stream open", append(o.attrs, "resume", lastID != "")...)
	return o
}

// closeStream logs the stream's close line before it releases its slot:
// Drain returns once every slot is released, so by then every close line
// is written, even a taken-over stream's, whose end no http.Server waits
// for.
func (s *Server) closeStream(o *openStream) {
	o.stopExpiry()
	s.cfg.Logger.Info("stream close", append(o.attrs,
		"reason", o.reason.String(), "dropped", o.stream.Dropped(), "duration", time.Since(o.start).Round(time.Millisecond))...)
	s.streams.release(o.slot)
}

// logAttrs are the attributes of a stream's open and close lines.
func (s *Server) logAttrs(r *http.Request, ip string, channels []string, c *Claims) []any {
	attrs := make([]any, 0, 12)
	attrs = append(attrs, "remote", r.RemoteAddr)
	if s.cfg.TrustProxy {
		attrs = append(attrs, "ip", ip)
	}
	attrs = append(attrs, "channels", channels)
	if c != nil {
		attrs = append(attrs, "sub", c.subject())
	}
	return attrs
}

func (s *Server) channels(r *http.Request) ([]string, error) {
	names := r.URL.Query()["channel"]
	if len(names) == 0 {
		return nil, errors.New("missing channel: use /events?channel=NAME")
	}
	if len(names) > s.cfg.MaxChannels {
		return nil, fmt.Errorf("%w: at most %d per stream", errTooManyChannels, s.cfg.MaxChannels)
	}
	out := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := sse.ValidChannel(n); err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// publishBody is the JSON body of POST /publish. Pointers tell a missing
// field from a zero one.
type publishBody struct {
	Channel *string         `json:"channel"`
	Data    json.RawMessage `json:"data"`
	Event   *string         `json:"event"`
	ID      *string         `json:"id"`
	Retry   json.RawMessage `json:"retry"`
	// Key is an event's idempotency key in a batch (where there is no
	// header per event).
	Key *string `json:"idempotency_key"`
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.publishAdmitted(w, r)
	if !ok {
		return
	}
	checked, status, err := s.decodePublish(w, r)
	if err != nil {
		if status == http.StatusRequestEntityTooLarge {
			s.metrics.limitRejected(limitBody)
		}
		writeError(w, status, err.Error())
		return
	}
	if claims != nil && !claims.CanPublish(checked.Channel()) {
		s.forbidden(w, r, claims, "publish", checked.Channel())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if err := validKey(key); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, err := s.cfg.Hub.PublishChecked(r.Context(), s.traceChecked(r, checked), key)
	if err != nil {
		if r.Context().Err() != nil {
			return // the publisher left; nobody reads an answer
		}
		if status, ok := publishRefusal(err); ok {
			writeError(w, status, "event not accepted: "+err.Error())
			return
		}
		if errors.Is(err, actors.ErrOutcomeUnknown) {
			// The event may have been taken: a retry is only safe with an
			// idempotency key, and the answer must not say "not taken".
			writeError(w, http.StatusGatewayTimeout, "event outcome unknown (it may have been accepted; retry with the same Idempotency-Key): "+err.Error())
			return
		}
		writeBusy(w, http.StatusServiceUnavailable, time.Second, "event not accepted: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedAnswer{Duplicate: p.Duplicate, ID: p.ID})
}

// acceptedAnswer is the body of a 202: a struct rather than a map, which
// encoding/json would sort and box on every publish. The fields keep the
// map's order.
type acceptedAnswer struct {
	Duplicate bool   `json:"duplicate,omitempty"`
	ID        string `json:"id"`
}

// publishAdmitted answers what refuses a publish request before its body
// is read (the rate per address, auth, the rate per subject, a cross-origin
// token) and otherwise returns its token's claims (nil with auth off).
func (s *Server) publishAdmitted(w http.ResponseWriter, r *http.Request) (*Claims, bool) {
	if !s.publishAddressAllowed(w, r) {
		return nil, false
	}
	claims, src, ok := s.authenticate(w, r)
	if !ok || !s.publishSubjectAllowed(w, claims) {
		return nil, false
	}
	if err := s.crossOriginRefused(r, src); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return nil, false
	}
	return claims, true
}

// MaxIdempotencyKey bounds the Idempotency-Key header, in bytes.
const MaxIdempotencyKey = 256

// validKey checks an Idempotency-Key: empty (none), or 1 to 256 bytes of
// printable ASCII.
func validKey(key string) error {
	if len(key) > MaxIdempotencyKey {
		return fmt.Errorf("Idempotency-Key over %d bytes", MaxIdempotencyKey)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return errors.New("Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return nil
}

// decodePublish reads a publish body and checks it with the hub, once:
// what it returns is published as it is. Every failure is the client's,
// so it is a 4xx with a reason.
func (s *Server) decodePublish(w http.ResponseWriter, r *http.Request) (actors.Checked, int, error) {
	raw, status, err := s.readPublish(w, r)
	if err != nil {
		return actors.Checked{}, status, err
	}
	b, err := parsePublishBody(raw, publishFields)
	if err != nil {
		return actors.Checked{}, http.StatusBadRequest, err
	}
	return s.checkPublish(b)
}

// exactBody is the largest declared publish length read into a buffer of
// exactly that size.
const exactBody = 1024

// readPublish reads a publish request's body, at most MaxBody bytes.
func (s *Server) readPublish(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	var body io.Reader = r.Body
	if s.cfg.MaxBody > 0 {
		body = http.MaxBytesReader(rawWriter(w), r.Body, s.cfg.MaxBody)
	}
	var raw []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= exactBody && n <= s.cfg.MaxBody {
		// io.ReadAll starts at 512 bytes and grows; most publishes are
		// smaller, and their length is known. The bound keeps what a client
		// that declares a length and withholds the body holds small.
		raw = make([]byte, n)
		_, err = io.ReadFull(body, raw)
	} else {
		raw, err = io.ReadAll(body)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", tooBig.Limit)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("reading body: %v", err)
	}
	return raw, 0, nil
}

// checkPublish turns a parsed publish body into an event the hub has
// checked.
func (s *Server) checkPublish(b publishBody) (actors.Checked, int, error) {
	if b.Channel == nil {
		return actors.Checked{}, http.StatusBadRequest, errors.New(`missing "channel"`)
	}
	if b.Data == nil {
		return actors.Checked{}, http.StatusBadRequest, errors.New(`missing "data"`)
	}
	var ev sse.Event
	var err error
	if ev.Data, err = sse.MarshalData(b.Data); err != nil {
		return actors.Checked{}, http.StatusBadRequest, fmt.Errorf(`invalid "data": %v`, err)
	}
	if b.Event != nil {
		ev.Event = *b.Event
	}
	if b.ID != nil {
		if *b.ID == "" {
			return actors.Checked{}, http.StatusBadRequest, errors.New(`"id" must not be empty: omit it to have one assigned`)
		}
		ev.ID = *b.ID
	}
	if b.Retry != nil && string(b.Retry) != "null" {
		if ev.Retry, err = sse.ParseRetryMillis(string(b.Retry)); err != nil {
			return actors.Checked{}, http.StatusBadRequest, errors.New(`"retry" must be a non-negative integer of milliseconds`)
		}
	}
	// The channel name and the event's own rules (fields the wire format
	// cannot carry, the id bound, reserved names, frames no stream could
	// queue) have one home, the hub's, checked once here: the hub and the
	// cluster behind it take the result as it is.
	c, err := s.cfg.Hub.Check(*b.Channel, ev)
	if err != nil {
		status, _ := publishRefusal(err)
		return actors.Checked{}, status, err
	}
	return c, 0, nil
}
