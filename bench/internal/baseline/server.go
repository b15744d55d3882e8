package baseline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/squall-sse/squall/sse"
)

// Config configures a [Server]. The zero value works.
type Config struct {
	// QueueLen is how many frames may wait for one stream before it is
	// closed as too slow. Zero means 256.
	QueueLen int
	// History is how many events each channel keeps for Last-Event-ID.
	// Zero means 1000; negative disables history.
	History int
	// WriteTimeout bounds each flush. Zero means 10s.
	WriteTimeout time.Duration
	// Redis, when set (redis://host:port/db), makes the server a cluster
	// node; empty means in memory.
	Redis string
	// RedisPrefix prefixes the Redis keys and pub/sub channels. Empty
	// means "sse".
	RedisPrefix string
	// Pprof mounts net/http/pprof under /debug/pprof/.
	Pprof bool
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// ErrRedisDown is returned by Start when the Redis subscription cannot be
// made.
var ErrRedisDown = errors.New("baseline: redis subscription failed")

// Server is the baseline SSE server.
type Server struct {
	cfg    Config
	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc
	ctx    context.Context

	mu    sync.Mutex
	chans map[string]*channel

	rdb    *redis.Client
	ps     *redis.PubSub
	relay  sync.WaitGroup
	script *redis.Script
	ready  atomic.Bool
}

type frame struct {
	id uint64
	b  []byte
}

type channel struct {
	mu   sync.Mutex
	last uint64 // the last id assigned
	subs map[*stream]struct{}
	hist []*frame // ring of the last History frames
	head int      // index of the oldest frame once the ring is full
}

type stream struct {
	q       chan *frame
	kicked  chan struct{}
	kickOne sync.Once
}

func (s *stream) kick() { s.kickOne.Do(func() { close(s.kicked) }) }

// New returns a server that is not yet listening.
func New(cfg Config) *Server {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 256
	}
	if cfg.History == 0 {
		cfg.History = 1000
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.RedisPrefix == "" {
		cfg.RedisPrefix = "sse"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, chans: map[string]*channel{}, ctx: ctx, cancel: cancel}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Handler is the server's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", s.handleEvents)
	mux.HandleFunc("POST /publish", s.handlePublish)
	mux.HandleFunc("POST /publish/batch", s.handlePublishBatch)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.cfg.Redis != "" && !s.ready.Load() {
			writeError(w, http.StatusServiceUnavailable, "redis not subscribed")
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /debug/memstats", MemStatsHandler)
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// MemStatsHandler answers {"heap_inuse","stack_inuse","sys","goroutines"}
// measured right after a GC, the same figures the hub's /debug/memstats
// gives.
func MemStatsHandler(w http.ResponseWriter, _ *http.Request) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]uint64{
		"heap_inuse":  m.HeapInuse,
		"stack_inuse": m.StackInuse,
		"sys":         m.Sys,
		"goroutines":  uint64(runtime.NumGoroutine()),
	})
}

// Start listens on addr and serves in the background; with Redis
// configured it first makes the pattern subscription.
func (s *Server) Start(addr string) error {
	if s.cfg.Redis != "" {
		if err := s.startRelay(); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("baseline: listen: %w", err)
	}
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("serve", "err", err)
		}
	}()
	return nil
}

// Addr is the listening address once started.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown ends every stream, stops the server and the relay. It is safe to
// call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	err := s.srv.Shutdown(ctx)
	if s.ps != nil {
		s.ps.Close()
		s.relay.Wait()
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
	return err
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (s *Server) channel(name string) *channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chans[name]
	if ch == nil {
		ch = &channel{subs: map[*stream]struct{}{}}
		s.chans[name] = ch
	}
	return ch
}

var resetFrame = func() []byte {
	b, _ := sse.AppendEvent(nil, sse.Event{Event: "reset", Data: []byte(`{"reason":"last event id not in history"}`)})
	return b
}()

// join subscribes st and returns the frames to replay after lastID, or
// the reset frame when lastID is not in the history.
func (ch *channel) join(st *stream, lastID string, resume bool) [][]byte {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.subs[st] = struct{}{}
	if !resume {
		return nil
	}
	id, err := strconv.ParseUint(lastID, 10, 64)
	if err != nil || id > ch.last {
		return [][]byte{resetFrame}
	}
	n := len(ch.hist)
	oldest := ch.last + 1 - uint64(n) // the id of the oldest kept frame
	if id+1 < oldest {
		return [][]byte{resetFrame}
	}
	var out [][]byte
	for i := range n {
		f := ch.hist[(ch.head+i)%n]
		if f.id > id {
			out = append(out, f.b)
		}
	}
	return out
}

func (ch *channel) leave(st *stream) {
	ch.mu.Lock()
	delete(ch.subs, st)
	ch.mu.Unlock()
}

// deliver keeps f and offers it to every stream without blocking.
func (ch *channel) deliver(f *frame, history int) {
	// Caller holds ch.mu.
	ch.last = f.id
	if history > 0 {
		if len(ch.hist) < history {
			ch.hist = append(ch.hist, f)
		} else {
			ch.hist[ch.head] = f
			ch.head = (ch.head + 1) % history
		}
	}
	for st := range ch.subs {
		select {
		case st.q <- f:
		default:
			delete(ch.subs, st)
			st.kick()
		}
	}
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	names := r.URL.Query()["channel"]
	if len(names) == 0 {
		writeError(w, http.StatusBadRequest, "missing channel")
		return
	}
	for _, n := range names {
		if sse.ValidChannel(n) != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid channel name %q", n))
			return
		}
	}
	lastID, resume := r.Header.Get("Last-Event-ID"), false
	if _, ok := r.Header["Last-Event-Id"]; ok {
		resume = true
	} else if v := r.URL.Query().Get("lastEventId"); v != "" {
		lastID, resume = v, true
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 {
		h.Set("Connection", "keep-alive")
	}
	// Subscribe before the headers go out, so a client that has them is
	// subscribed; what is published meanwhile waits in the queue.
	st := &stream{q: make(chan *frame, s.cfg.QueueLen), kicked: make(chan struct{})}
	var replay [][]byte
	var joined []*channel
	for _, n := range names {
		ch := s.channel(n)
		replay = append(replay, ch.join(st, lastID, resume)...)
		joined = append(joined, ch)
	}
	defer func() {
		for _, ch := range joined {
			ch.leave(st)
		}
	}()
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	wt := s.cfg.WriteTimeout
	if len(replay) > 0 {
		rc.SetWriteDeadline(time.Now().Add(wt))
		for _, b := range replay {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	ctx := r.Context()
	for {
		select {
		case f := <-st.q:
			rc.SetWriteDeadline(time.Now().Add(wt))
			if _, err := w.Write(f.b); err != nil {
				return
			}
			// Coalesce: write what else is queued, then flush once.
		more:
			for {
				select {
				case f := <-st.q:
					if _, err := w.Write(f.b); err != nil {
						return
					}
				default:
					break more
				}
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-st.kicked:
			return
		case <-ctx.Done():
			return
		}
	}
}

type publishReq struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	Event   string          `json:"event"`
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	var req publishReq
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed body: "+err.Error())
		return
	}
	data, err := req.check()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var id uint64
	if s.rdb != nil {
		id, err = s.publishRedis(r.Context(), req.Channel, req.Event, data)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	} else {
		id = s.publishLocal(req.Channel, req.Event, data)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"id":"%d"}`, id)
}

// maxBatch is the most events one POST /publish/batch takes, as the hub.
const maxBatch = 1000

// handlePublishBatch takes a JSON array of /publish bodies, so that the
// bench can compare batching on both servers. Like the hub it refuses the
// whole batch when one event is invalid; unlike the hub it publishes one
// event after another and stops at the first Redis error.
func (s *Server) handlePublishBatch(w http.ResponseWriter, r *http.Request) {
	var reqs []publishReq
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if err := json.Unmarshal(body, &reqs); err != nil {
		writeError(w, http.StatusBadRequest, "malformed body: "+err.Error())
		return
	}
	if len(reqs) == 0 {
		writeError(w, http.StatusBadRequest, "empty batch")
		return
	}
	if len(reqs) > maxBatch {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a batch has at most %d events", maxBatch))
		return
	}
	data := make([][]byte, len(reqs))
	for i, req := range reqs {
		d, err := req.check()
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("event %d: %v", i, err))
			return
		}
		data[i] = d
	}
	out := fmt.Appendf(nil, `{"accepted":%d,"results":[`, len(reqs))
	for i, req := range reqs {
		var id uint64
		if s.rdb != nil {
			var err error
			if id, err = s.publishRedis(r.Context(), req.Channel, req.Event, data[i]); err != nil {
				writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("event %d: %v", i, err))
				return
			}
		} else {
			id = s.publishLocal(req.Channel, req.Event, data[i])
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = fmt.Appendf(out, `{"status":202,"id":"%d"}`, id)
	}
	out = append(out, "]}"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	w.Write(out)
}

// readBody reads a publish body of at most 1 MiB; on failure it has
// answered.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body")
		return nil, false
	}
	if len(body) > 1<<20 {
		writeError(w, http.StatusRequestEntityTooLarge, "body over 1 MiB")
		return nil, false
	}
	return body, true
}

// check validates req and returns its data as it goes on the wire.
func (req publishReq) check() ([]byte, error) {
	if sse.ValidChannel(req.Channel) != nil {
		return nil, errors.New("invalid channel name")
	}
	if len(req.Data) == 0 {
		return nil, errors.New("missing data")
	}
	data, err := sse.MarshalData(req.Data)
	if err != nil {
		return nil, err
	}
	if err := sse.ValidName(req.Event); err != nil {
		return nil, err
	}
	return data, nil
}

// publishLocal assigns the next id, encodes once and fans out.
func (s *Server) publishLocal(name, event string, data []byte) uint64 {
	ch := s.channel(name)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	id := ch.last + 1
	ch.deliver(encode(id, event, data), s.cfg.History)
	return id
}

func encode(id uint64, event string, data []byte) *frame {
	b, err := sse.AppendEvent(make([]byte, 0, 32+len(event)+len(data)), sse.Event{ID: strconv.FormatUint(id, 10), Event: event, Data: data})
	if err != nil {
		// Validated by the caller: the id is digits and the name was checked.
		panic("baseline: " + err.Error())
	}
	return &frame{id: id, b: b}
}
