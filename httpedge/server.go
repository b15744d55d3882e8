package httpedge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge/sse"
)

// Publisher takes an event for a channel and returns its id. *actors.Hub is
// one (in memory); the Redis relay's publisher is another (cluster mode).
type Publisher interface {
	Publish(ctx context.Context, channel string, ev sse.Event) (id string, err error)
}

// Config configures a [Server]. Only Hub is required.
type Config struct {
	// Hub serves the streams.
	Hub *actors.Hub
	// Publisher takes publishes. Nil means Hub.
	Publisher Publisher
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
}

// Server is the hub's HTTP API: GET /events, POST /publish, GET /healthz and
// GET /readyz.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	draining atomic.Bool
}

// New returns a Server. It panics if cfg.Hub is nil.
func New(cfg Config) *Server {
	if cfg.Hub == nil {
		panic("httpedge: Config.Hub is nil")
	}
	if cfg.Publisher == nil {
		cfg.Publisher = cfg.Hub
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
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /events", s.events)
	s.mux.HandleFunc("POST /publish", s.publish)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	return s
}

// Handle mounts an extra handler on the server's mux (the demo page,
// metrics).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// StartDraining turns /readyz to 503 and refuses new streams, so a load
// balancer moves clients elsewhere before the streams are closed.
func (s *Server) StartDraining() { s.draining.Store(true) }

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "draining")
		return
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// MaxLastEventID bounds a resume id, in bytes (a composite id of 16
// channels fits easily).
const MaxLastEventID = 8 << 10

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	channels, err := s.channels(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId")
	}
	if err := sse.ValidID(lastID); err != nil || len(lastID) > MaxLastEventID {
		writeError(w, http.StatusBadRequest, "invalid Last-Event-ID: it must be at most 8 KiB without CR, LF or NUL")
		return
	}
	if s.draining.Load() {
		writeBusy(w, http.StatusServiceUnavailable, time.Second, "draining: reconnect to another node")
		return
	}
	WriteHeaders(w, r)
	stream, err := s.cfg.Hub.Open(w, actors.StreamOptions{Channels: channels, LastEventID: lastID})
	if err != nil {
		// Headers are out: end the stream with a hint to come back.
		_, _ = w.Write(sse.AppendRetry(nil, time.Second))
		return
	}
	start := time.Now()
	s.cfg.Logger.Info("stream open", "remote", r.RemoteAddr, "channels", channels, "resume", lastID != "")
	reason := stream.Wait(r.Context())
	s.cfg.Logger.Info("stream close", "remote", r.RemoteAddr, "channels", channels,
		"reason", reason.String(), "dropped", stream.Dropped(), "duration", time.Since(start).Round(time.Millisecond))
}

func (s *Server) channels(r *http.Request) ([]string, error) {
	names := r.URL.Query()["channel"]
	if len(names) == 0 {
		return nil, errors.New("missing channel: use /events?channel=NAME")
	}
	if len(names) > s.cfg.MaxChannels {
		return nil, fmt.Errorf("too many channels: at most %d per stream", s.cfg.MaxChannels)
	}
	out := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := ValidChannel(n); err != nil {
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
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	channel, ev, status, err := s.decodePublish(w, r)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	id, err := s.cfg.Publisher.Publish(r.Context(), channel, ev)
	if err != nil {
		if r.Context().Err() != nil {
			return // the publisher left; nobody reads an answer
		}
		writeBusy(w, http.StatusServiceUnavailable, time.Second, "event not accepted: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
}

// decodePublish reads and validates a publish body. Every failure is the
// client's, so it is a 4xx with a reason.
func (s *Server) decodePublish(w http.ResponseWriter, r *http.Request) (string, sse.Event, int, error) {
	var body io.Reader = r.Body
	if s.cfg.MaxBody > 0 {
		body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", sse.Event{}, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", tooBig.Limit)
		}
		return "", sse.Event{}, http.StatusBadRequest, fmt.Errorf("reading body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b publishBody
	if err := dec.Decode(&b); err != nil {
		return "", sse.Event{}, http.StatusBadRequest, fmt.Errorf("malformed JSON body: %v", err)
	}
	if dec.More() {
		return "", sse.Event{}, http.StatusBadRequest, errors.New("malformed JSON body: data after the object")
	}
	if b.Channel == nil {
		return "", sse.Event{}, http.StatusBadRequest, errors.New(`missing "channel"`)
	}
	if err := ValidChannel(*b.Channel); err != nil {
		return "", sse.Event{}, http.StatusBadRequest, err
	}
	if b.Data == nil {
		return "", sse.Event{}, http.StatusBadRequest, errors.New(`missing "data"`)
	}
	var ev sse.Event
	if ev.Data, err = sse.MarshalData(b.Data); err != nil {
		return "", sse.Event{}, http.StatusBadRequest, fmt.Errorf(`invalid "data": %v`, err)
	}
	if b.Event != nil {
		ev.Event = *b.Event
	}
	if b.ID != nil {
		if *b.ID == "" {
			return "", sse.Event{}, http.StatusBadRequest, errors.New(`"id" must not be empty: omit it to have one assigned`)
		}
		ev.ID = *b.ID
	}
	if b.Retry != nil && string(b.Retry) != "null" {
		ms, err := strconv.ParseInt(string(b.Retry), 10, 64)
		if err != nil || ms < 0 || ms > 1<<31 {
			return "", sse.Event{}, http.StatusBadRequest, errors.New(`"retry" must be a non-negative integer of milliseconds`)
		}
		ev.Retry = time.Duration(ms) * time.Millisecond
	}
	if err := ev.Validate(); err != nil {
		return "", sse.Event{}, http.StatusBadRequest, err
	}
	if len(ev.ID) > MaxLastEventID {
		return "", sse.Event{}, http.StatusBadRequest, errors.New(`"id" is over 8 KiB`)
	}
	return *b.Channel, ev, 0, nil
}
