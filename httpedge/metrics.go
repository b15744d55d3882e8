package httpedge

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/squall-sse/squall/actors"
)

// Metrics is the hub's Prometheus instrumentation. It is an
// actors.Observer (pass it as actors.Config.Observer) and counts the edge's
// refusals (pass it as Config.Metrics, which also serves it at /metrics).
// Each Metrics has its own registry, so several can live in one process.
//
// The series:
//
//	squall_streams_open                       gauge: streams open now
//	squall_channels                           gauge: live channel actors (channels with subscribers or recent history)
//	squall_events_published_total            counter: events fanned out by a channel
//	squall_events_delivered_total             counter: events written to clients (one per subscriber)
//	squall_frames_dropped_total               counter: frames discarded by a drop-oldest/drop-newest policy
//	squall_disconnects_total{reason}          counter: streams closed, by actors.CloseReason
//	squall_publish_to_flush_seconds           histogram: from a publish to the flush that wrote it
//	squall_replay_total{result="hit|miss"}    counter: resumes by channel; miss sent a reset event
//	squall_history_evictions_total{reason}    counter: events evicted from memory-mode history, by actors.EvictReason (count, bytes, budget, age)
//	squall_history_bytes                      gauge: memory-mode history held, as counted against the history budget
//	squall_relay_up                           gauge: 1 when the relay is subscribed (always 1 without a relay)
//	squall_relay_dropped_total{reason}        counter: messages read from Redis and never delivered: malformed (not a valid envelope, or a reserved event name), oversize (frame over the stream queue bound)
//	squall_limit_rejections_total{limit}      counter: refusals by limit: streams, streams_per_ip, channels, body, publish_rate_subject, publish_rate_address
//	squall_publish_requests_total{outcome}    counter: answers to POST /publish by outcome (see publishOutcomes)
//	squall_auth_failures_total{code}          counter: 401 (no or bad token) and 403 (channel not allowed)
//
// plus the Go runtime (go_*) and process (process_*) collectors.
//
// The Observer methods run on actor goroutines once per publish and per
// flush: they touch pre-resolved series only, and allocate nothing.
type Metrics struct {
	reg *prometheus.Registry

	streamsOpen prometheus.Gauge
	channels    prometheus.Gauge
	published   prometheus.Counter
	delivered   prometheus.Counter
	dropped     prometheus.Counter
	disconnects []prometheus.Counter // by CloseReason; [0] is for an unknown reason
	latency     prometheus.Histogram
	replayHit   prometheus.Counter
	replayMiss  prometheus.Counter
	evictions   []prometheus.Counter // by actors.EvictReason; [0] is for an unknown reason
	histBytes   prometheus.Gauge
	limits      map[string]prometheus.Counter // read-only after NewMetrics
	auth401     prometheus.Counter
	auth403     prometheus.Counter

	publishOutcomes map[string]prometheus.Counter // by publishOutcome; read-only after NewMetrics
	ratesObserved   atomic.Bool                   // squall_publish_rate_* registered

	relayReady atomic.Pointer[func() error]
	relayDrops [2]atomic.Pointer[func() uint64] // by relayDropReasons
}

// relayDropReasons label squall_relay_dropped_total, in the order of
// SetRelayDrops's arguments.
var relayDropReasons = [2]string{"malformed", "oversize"}

var (
	_ actors.Observer        = (*Metrics)(nil)
	_ actors.HistoryObserver = (*Metrics)(nil)
)

// NewMetrics returns metrics on a fresh registry, every labelled series
// declared at zero so that dashboards and rate() see them from the start.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), limits: map[string]prometheus.Counter{}}
	f := registrar{m.reg}
	m.streamsOpen = f.gauge("squall_streams_open", "Streams open now.")
	m.channels = f.gauge("squall_channels", "Live channel actors: channels with subscribers or recent history.")
	m.published = f.counter("squall_events_published_total", "Events fanned out by a channel.")
	m.delivered = f.counter("squall_events_delivered_total", "Events written to clients, one per subscriber.")
	m.dropped = f.counter("squall_frames_dropped_total", "Frames discarded by a drop-oldest or drop-newest overflow policy.")

	disc := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "squall_disconnects_total", Help: "Streams closed, by reason.",
	}, []string{"reason"})
	m.reg.MustRegister(disc)
	reasons := actors.CloseReasons()
	top := 0
	for _, r := range reasons {
		top = max(top, int(r))
	}
	m.disconnects = make([]prometheus.Counter, top+1)
	m.disconnects[0] = disc.WithLabelValues("unknown")
	for _, r := range reasons {
		m.disconnects[r] = disc.WithLabelValues(r.String())
	}

	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "squall_publish_to_flush_seconds",
		Help:    "Time from a publish to the flush that wrote it to a client (the oldest event of each flush).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	m.reg.MustRegister(m.latency)

	replay := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "squall_replay_total", Help: "Resumes with Last-Event-ID, per channel: hit replayed from history, miss sent a reset event.",
	}, []string{"result"})
	m.reg.MustRegister(replay)
	m.replayHit, m.replayMiss = replay.WithLabelValues("hit"), replay.WithLabelValues("miss")

	ev := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "squall_history_evictions_total", Help: "Events evicted from a channel's memory-mode history, by reason: count, bytes (the channel's byte bound), budget (the global history budget), age.",
	}, []string{"reason"})
	m.reg.MustRegister(ev)
	evReasons := actors.EvictReasons()
	m.evictions = make([]prometheus.Counter, len(evReasons)+1)
	m.evictions[0] = ev.WithLabelValues("unknown")
	for _, r := range evReasons {
		m.evictions[r] = ev.WithLabelValues(r.String())
	}
	m.histBytes = f.gauge("squall_history_bytes", "Bytes held by memory-mode histories, as counted against the history budget (0 without a budget).")

	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "squall_relay_up", Help: "1 when the Redis relay is subscribed (always 1 in memory mode), 0 otherwise.",
	}, m.relayUp))

	for i, reason := range relayDropReasons {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "squall_relay_dropped_total",
			Help:        "Messages read from Redis and never delivered: malformed (not a valid envelope, or a reserved event name), oversize (frame over the stream queue bound, which no subscriber could receive).",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 {
			if f := m.relayDrops[i].Load(); f != nil {
				return float64((*f)())
			}
			return 0
		}))
	}

	lim := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "squall_limit_rejections_total", Help: "Requests refused by a limit: streams (global), streams_per_ip, channels (per stream), body (publish size), publish_rate_subject and publish_rate_address (publish rates).",
	}, []string{"limit"})
	m.reg.MustRegister(lim)
	for _, l := range append(slices.Clone(limitNames), rateLimitNames...) {
		m.limits[l] = lim.WithLabelValues(l)
	}

	pub := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "squall_publish_requests_total", Help: "Answers to POST /publish, by outcome: " + strings.Join(publishOutcomeNames(), ", ") + ".",
	}, []string{"outcome"})
	m.reg.MustRegister(pub)
	m.publishOutcomes = map[string]prometheus.Counter{}
	for _, o := range publishOutcomeNames() {
		m.publishOutcomes[o] = pub.WithLabelValues(o)
	}

	auth := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "squall_auth_failures_total", Help: "Requests refused by auth: 401 without a valid token, 403 for a channel the token does not allow.",
	}, []string{"code"})
	m.reg.MustRegister(auth)
	m.auth401, m.auth403 = auth.WithLabelValues("401"), auth.WithLabelValues("403")

	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registrar registers plain series on one registry.
type registrar struct{ reg *prometheus.Registry }

func (p registrar) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	p.reg.MustRegister(g)
	return g
}

func (p registrar) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	p.reg.MustRegister(c)
	return c
}

// Registry is the registry the metrics live on, for adding more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SetRelayReady makes squall_relay_up follow ready (nil error: up), read at
// each scrape. Without it, or with nil, the relay is reported up.
func (m *Metrics) SetRelayReady(ready func() error) {
	if ready == nil {
		m.relayReady.Store(nil)
		return
	}
	m.relayReady.Store(&ready)
}

// SetRelayDrops makes squall_relay_dropped_total follow the relay's
// counts of dropped messages (redisrelay.Relay's Malformed and Oversize),
// read at each scrape. Without it the series stay at zero.
func (m *Metrics) SetRelayDrops(malformed, oversize func() uint64) {
	for i, f := range [2]func() uint64{malformed, oversize} {
		if f == nil {
			m.relayDrops[i].Store(nil)
			continue
		}
		m.relayDrops[i].Store(&f)
	}
}

func (m *Metrics) relayUp() float64 {
	if f := m.relayReady.Load(); f != nil && (*f)() != nil {
		return 0
	}
	return 1
}

// StreamOpened implements actors.Observer.
func (m *Metrics) StreamOpened() { m.streamsOpen.Inc() }

// StreamClosed implements actors.Observer.
func (m *Metrics) StreamClosed(r actors.CloseReason) {
	m.streamsOpen.Dec()
	if int(r) > 0 && int(r) < len(m.disconnects) {
		m.disconnects[r].Inc()
		return
	}
	m.disconnects[0].Inc()
}

// Published implements actors.Observer.
func (m *Metrics) Published(string) { m.published.Inc() }

// Flushed implements actors.Observer.
func (m *Metrics) Flushed(events int, oldest time.Duration) {
	m.delivered.Add(float64(events))
	m.latency.Observe(oldest.Seconds())
}

// Dropped implements actors.Observer.
func (m *Metrics) Dropped(n int) { m.dropped.Add(float64(n)) }

// Resumed implements actors.Observer.
func (m *Metrics) Resumed(hit bool) {
	if hit {
		m.replayHit.Inc()
	} else {
		m.replayMiss.Inc()
	}
}

// HistoryEvicted implements actors.HistoryObserver.
func (m *Metrics) HistoryEvicted(r actors.EvictReason, n int) {
	if int(r) > 0 && int(r) < len(m.evictions) {
		m.evictions[r].Add(float64(n))
		return
	}
	m.evictions[0].Add(float64(n))
}

// HistoryBytes implements actors.HistoryObserver.
func (m *Metrics) HistoryBytes(n int64) { m.histBytes.Set(float64(n)) }

// ChannelsChanged implements actors.Observer.
func (m *Metrics) ChannelsChanged(n int) { m.channels.Set(float64(n)) }

// limitRejected counts a refusal by limit; nil Metrics count nothing.
func (m *Metrics) limitRejected(limit string) {
	if m != nil {
		m.limits[limit].Inc()
	}
}

// authFailed counts a 401 or 403; nil Metrics count nothing.
func (m *Metrics) authFailed(code int) {
	if m == nil {
		return
	}
	if code == http.StatusUnauthorized {
		m.auth401.Inc()
	} else {
		m.auth403.Inc()
	}
}

// publishOutcomes name the answers of POST /publish by status, the label
// values of squall_publish_requests_total. A status not listed is "other";
// "abandoned" is a publish whose client left before the answer.
var publishOutcomes = map[int]string{
	http.StatusAccepted:              "accepted",
	http.StatusMultiStatus:           "partial", // a batch with events not accepted
	http.StatusBadRequest:            "invalid",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusServiceUnavailable:    "unavailable",
	http.StatusGatewayTimeout:        "outcome_unknown",
}

func publishOutcomeNames() []string {
	names := []string{"other", "abandoned"}
	for _, n := range publishOutcomes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// publishAnswered counts one answer of POST /publish; status 0 means none
// was written.
func (m *Metrics) publishAnswered(status int) {
	outcome, ok := publishOutcomes[status]
	switch {
	case status == 0:
		outcome = "abandoned"
	case !ok:
		outcome = "other"
	}
	m.publishOutcomes[outcome].Inc()
}

// countPublish counts each answer of h by outcome. The outcome comes from
// the status written, so that every return path of the handler is counted
// without each one saying so.
func (s *Server) countPublish(h http.HandlerFunc) http.HandlerFunc {
	if s.metrics == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		s.metrics.publishAnswered(sw.status)
	}
}

// statusWriter remembers the status of a non-streaming answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach net/http's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rawWriter is w without a statusWriter around it: http.MaxBytesReader
// must see net/http's own writer, or a body over the limit no longer
// closes the connection after the 413.
func rawWriter(w http.ResponseWriter) http.ResponseWriter {
	if sw, ok := w.(*statusWriter); ok {
		return sw.ResponseWriter
	}
	return w
}
