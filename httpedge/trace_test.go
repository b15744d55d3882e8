package httpedge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/tracing"
)

// tracedServer is a hub whose edge exports every span to a recorder, in
// memory and synchronously (the SDK's in-memory exporter).
func tracedServer(t *testing.T) (*hubServer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	return newHubServer(t, actors.Config{}, httpedge.Config{TracerProvider: tp}), exp
}

const (
	parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpan  = "00f067aa0ba902b7"
)

func postTraced(t *testing.T, s *hubServer, body, traceparent string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/publish", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer not-a-real-token")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func spanNamed(spans tracetest.SpanStubs, name string) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.Name == name {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

// waitSpan waits for the span named name: the server span ends after the
// answer is written, so the client may read it first.
func waitSpan(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	var s tracetest.SpanStub
	require.Eventually(t, func() bool {
		var ok bool
		s, ok = spanNamed(exp.GetSpans(), name)
		return ok
	}, wait, wait/500, "span %s", name)
	return s
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// A publish with a traceparent is a server span under that parent; its
// fanout and, once a subscriber's write carried the event, its first
// delivery are spans under the server span.
func TestTracePublishToFirstDelivery(t *testing.T) {
	s, exp := tracedServer(t)
	c := s.subscribe(t, "channel=orders", nil)
	tp := "00-" + parentTrace + "-" + parentSpan + "-01"
	require.Equal(t, http.StatusAccepted, postTraced(t, s, `{"channel":"orders","data":"hi"}`, tp))
	c.RequireNext(t, "hi")
	waitSpan(t, exp, tracing.SpanDeliver)
	server := waitSpan(t, exp, "POST /publish")
	spans := exp.GetSpans()
	assert.Equal(t, trace.SpanKindServer, server.SpanKind)
	assert.Equal(t, parentTrace, server.SpanContext.TraceID().String())
	assert.Equal(t, parentSpan, server.Parent.SpanID().String())
	assert.True(t, server.Parent.IsRemote())
	a := attrs(server)
	assert.Equal(t, "POST", a["http.request.method"].AsString())
	assert.Equal(t, "/publish", a["http.route"].AsString())
	assert.Equal(t, int64(http.StatusAccepted), a["http.response.status_code"].AsInt64())
	assert.Equal(t, "orders", a[tracing.AttrDestination].AsString())
	for k, v := range a {
		assert.NotContains(t, v.String(), "not-a-real-token", "attribute %s", k)
	}
	assert.Equal(t, codes.Unset, server.Status.Code)

	fan, ok := spanNamed(spans, tracing.SpanFanout)
	require.True(t, ok)
	assert.Equal(t, server.SpanContext.SpanID(), fan.Parent.SpanID())
	assert.Equal(t, int64(1), attrs(fan)[tracing.AttrSubscribers].AsInt64())
	deliver, _ := spanNamed(spans, tracing.SpanDeliver)
	assert.Equal(t, server.SpanContext.SpanID(), deliver.Parent.SpanID())
	assert.Equal(t, "orders", attrs(deliver)[tracing.AttrDestination].AsString())
	assert.False(t, deliver.EndTime.Before(deliver.StartTime))
	assert.Len(t, spans, 3)
}

// Only the first write carrying the event makes a deliver span, however
// many subscribers get it; nobody subscribed makes a fanout span of 0.
func TestTraceFirstDeliveryOnce(t *testing.T) {
	s, exp := tracedServer(t)
	c1 := s.subscribe(t, "channel=a", nil)
	c2 := s.subscribe(t, "channel=a", nil)
	require.Equal(t, http.StatusAccepted, postTraced(t, s, `{"channel":"a","data":"x"}`, ""))
	c1.RequireNext(t, "x")
	c2.RequireNext(t, "x")
	require.Equal(t, http.StatusAccepted, postTraced(t, s, `{"channel":"nobody","data":"y"}`, ""))
	// A marker publish: once its deliver span is in, the first event's
	// writes to both subscribers have long completed.
	require.Equal(t, http.StatusAccepted, postTraced(t, s, `{"channel":"a","data":"z"}`, ""))
	c1.RequireNext(t, "z")
	require.Eventually(t, func() bool {
		n := 0
		for _, sp := range exp.GetSpans() {
			if sp.Name == tracing.SpanDeliver {
				n++
			}
		}
		return n == 2
	}, wait, wait/100)
	c2.RequireNext(t, "z")
	var subs []int64
	delivers := 0
	for _, sp := range exp.GetSpans() {
		switch sp.Name {
		case tracing.SpanFanout:
			subs = append(subs, attrs(sp)[tracing.AttrSubscribers].AsInt64())
		case tracing.SpanDeliver:
			delivers++
		}
	}
	assert.Equal(t, []int64{2, 0, 2}, subs)
	assert.Equal(t, 2, delivers, "one per event that had a subscriber")
}

// A refused publish is still a server span, with its status code; a 4xx
// is not an error of the server's.
func TestTraceRefusedPublish(t *testing.T) {
	s, exp := tracedServer(t)
	require.Equal(t, http.StatusBadRequest, postTraced(t, s, `{"channel":"a"}`, ""))
	waitSpan(t, exp, "POST /publish")
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	assert.Equal(t, int64(http.StatusBadRequest), attrs(spans[0])["http.response.status_code"].AsInt64())
	assert.Equal(t, codes.Unset, spans[0].Status.Code)
}

// An unsampled parent makes no span at all under the default sampler
// (parent-based), and the hub carries nothing.
func TestTraceUnsampledParent(t *testing.T) {
	s, exp := tracedServer(t)
	c := s.subscribe(t, "channel=a", nil)
	tp := "00-" + parentTrace + "-" + parentSpan + "-00"
	require.Equal(t, http.StatusAccepted, postTraced(t, s, `{"channel":"a","data":"x"}`, tp))
	c.RequireNext(t, "x")
	// A sampled marker: once its deliver span is in, the unsampled event's
	// write has long completed.
	require.Equal(t, http.StatusAccepted, postTraced(t, s, `{"channel":"a","data":"m"}`, ""))
	c.RequireNext(t, "m")
	waitSpan(t, exp, tracing.SpanDeliver)
	waitSpan(t, exp, "POST /publish")
	for _, sp := range exp.GetSpans() {
		assert.NotEqual(t, parentTrace, sp.SpanContext.TraceID().String(), "span %s", sp.Name)
	}
	assert.Len(t, exp.GetSpans(), 3, "the marker's three spans only")
}

// Tracing off is no TracerProvider in the Config: a global provider the
// application installed for itself is not used, and a traceparent is not
// even read.
func TestTraceOffMakesNoSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(t.Context()) }()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	c := s.subscribe(t, "channel=a", nil)
	require.Equal(t, http.StatusAccepted, postTraced(t, s, `{"channel":"a","data":"x"}`, "00-"+parentTrace+"-"+parentSpan+"-01"))
	c.RequireNext(t, "x")
	// The global provider works: a span of ours shows up in it, alone.
	_, sp := otel.Tracer("test").Start(t.Context(), "marker")
	sp.End()
	require.Len(t, exp.GetSpans(), 1)
	assert.Equal(t, "marker", exp.GetSpans()[0].Name)
}

// The request's traceparent is a parent only when it is a valid W3C
// traceparent: a version-00 one is exactly 55 bytes, and one byte more, or
// an all-zero trace id, makes the publish a root span, still accepted.
func TestTraceparentAtTheBound(t *testing.T) {
	valid := "00-" + parentTrace + "-" + parentSpan + "-01"
	require.Len(t, valid, 55)
	for _, tc := range []struct {
		tp     string
		parent bool
	}{
		{valid, true},
		{valid + "0", false},
		{"00-" + strings.Repeat("0", 32) + "-" + parentSpan + "-01", false},
		{strings.Repeat("x", 8<<10), false},
	} {
		s, exp := tracedServer(t)
		require.Equal(t, http.StatusAccepted, postTraced(t, s, `{"channel":"a","data":"x"}`, tc.tp))
		server := waitSpan(t, exp, "POST /publish")
		assert.Equal(t, tc.parent, server.Parent.IsValid(), "traceparent of %d bytes", len(tc.tp))
		assert.Equal(t, tc.parent, server.SpanContext.TraceID().String() == parentTrace, "traceparent of %d bytes", len(tc.tp))
	}
}
