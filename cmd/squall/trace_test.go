package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpSink is an OTLP/HTTP collector: it keeps the span names of every
// protobuf POST to /v1/traces.
type otlpSink struct {
	mu       sync.Mutex
	names    []string
	services []string
	bad      []string
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/v1/traces":
		s.bad = append(s.bad, r.Method+" "+r.URL.Path)
	case r.Header.Get("Content-Type") != "application/x-protobuf":
		s.bad = append(s.bad, "content type "+r.Header.Get("Content-Type"))
	case err != nil || proto.Unmarshal(body, &req) != nil:
		s.bad = append(s.bad, "not an ExportTraceServiceRequest")
	}
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				s.services = append(s.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s.names = append(s.names, sp.GetName())
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(b)
}

func (s *otlpSink) snapshot() (names, services, bad []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...), append([]string(nil), s.services...), append([]string(nil), s.bad...)
}

// With only the standard OTLP endpoint variable set, the binary exports
// its publish's spans as OTLP/HTTP protobuf to that endpoint: the server
// span, the fanout and the first delivery.
func TestOTLPExportFromEnvironment(t *testing.T) {
	sink := &otlpSink{}
	collector := httptest.NewServer(sink)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.URL+"/v1/traces")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20") // ms: export soon, not in 5 s
	h := runHub(t, "http", &http.Client{})
	c := h.subscribe(t, "channel=t")
	h.publish(t, "t", "traced")
	c.RequireNext(t, "traced")
	require.Eventually(t, func() bool {
		names, _, _ := sink.snapshot()
		return len(names) >= 3
	}, 10*time.Second, 20*time.Millisecond)
	names, services, bad := sink.snapshot()
	assert.ElementsMatch(t, []string{"POST /publish", "squall fanout", "squall deliver"}, names)
	assert.Contains(t, services, "squall")
	assert.Empty(t, bad)
}

// Without the flag or an endpoint the binary makes no tracer provider; the
// environment can turn tracing off, and asks for what is not built in are
// refused rather than ignored.
func TestTracingSwitch(t *testing.T) {
	for _, tc := range []struct {
		flag bool
		env  map[string]string
		on   bool
		err  bool
	}{
		{},
		{flag: true, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, on: true},
		{flag: true, env: map[string]string{"OTEL_SDK_DISABLED": "true"}},
		{flag: true, env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{flag: true, env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{flag: true, env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: true},
		{flag: true, env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, err: true},
		{flag: true, env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, err: true},
		{flag: true, env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, on: true},
	} {
		o := traceOptions{on: tc.flag}
		on, err := o.enabled(func(k string) string { return tc.env[k] })
		assert.Equal(t, tc.err, err != nil, "%+v: %v", tc, err)
		assert.Equal(t, tc.on, on, "%+v", tc)
	}
}

// A collector that refuses the spans is a warning in the hub's log.
func TestOTLPExportFailureIsLogged(t *testing.T) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusBadRequest) // not retried by the exporter
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	h := runHub(t, "http", &http.Client{})
	h.publish(t, "t", "x")
	require.Eventually(t, func() bool { return h.logged(t, "tracing error") }, 10*time.Second, 20*time.Millisecond)
}
