package redisrelay_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/tracing"
	"github.com/squall-sse/squall/redisrelay"
)

// tracedNode is a node whose relay and edge trace into their own in-memory
// exporter (exp nil: tracing off).
//
// Only publishes under a sampled traceparent are traced: tests publish an
// untraced warm-up event and wait for it before the traced one they look
// at, since an event that a node reads by its catch-up of the history,
// right after its subscription to the channel is confirmed, carries no
// trace context (the history stores none), and a raw PUBLISH before the
// subscription is lost.
func tracedNode(t *testing.T, prefix string, exp *tracetest.InMemoryExporter) *node {
	t.Helper()
	var tp trace.TracerProvider
	if exp != nil {
		p := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
		t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
		tp = p
	}
	relay, err := redisrelay.New(redisrelay.Config{URL: sharedRedis, Prefix: prefix, TracerProvider: tp})
	require.NoError(t, err)
	hub := actorstest.NewHub(t, actors.Config{Cluster: relay})
	relay.Start(hub.System(), hub)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		require.NoError(t, relay.Shutdown(ctx))
	})
	srv := httptest.NewServer(httpedge.New(httpedge.Config{Hub: hub, Ready: relay.Ready, TracerProvider: tp}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = hub.Drain(ctx, 0)
		srv.Close()
	})
	n := &node{relay: relay, hub: hub, srv: srv}
	n.requireReady(t)
	return n
}

// tracedPublish posts body under a sampled traceparent of trace testTrace.
func tracedPublish(t *testing.T, n *node, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.srv.URL+"/publish", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("traceparent", "00-"+testTrace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

const testTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

func named(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attrOf(s tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// In cluster mode a publish is the edge's server span, the Redis publish a
// client span under it, and on every node (the publisher's and another)
// the fanout and first delivery are under the client span: the
// traceparent crossed Redis in the envelope.
func TestTraceClusterPublishAcrossNodes(t *testing.T) {
	prefix := newPrefix(t, sharedRedis)
	expA, expB := tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter()
	a, b := tracedNode(t, prefix, expA), tracedNode(t, prefix, expB)
	ca, cb := a.subscribe(t, "channel=c", ""), b.subscribe(t, "channel=c", "")
	a.mustPublish(t, "c", "warm-up")
	ca.RequireNext(t, "warm-up")
	cb.RequireNext(t, "warm-up")
	require.Empty(t, expA.GetSpans(), "an untraced publish")
	tracedPublish(t, a, `{"channel":"c","data":"hello"}`)
	ca.RequireNext(t, "hello")
	cb.RequireNext(t, "hello")
	require.Eventually(t, func() bool {
		// The server span ends once the answer is written: it may come last.
		return len(named(expA, tracing.SpanDeliver)) == 1 && len(named(expB, tracing.SpanDeliver)) == 1 &&
			len(named(expA, "POST /publish")) == 1
	}, wait, 10*time.Millisecond)

	server := named(expA, "POST /publish")
	require.Len(t, server, 1)
	redisSpan := named(expA, "EVALSHA")
	require.Len(t, redisSpan, 1)
	r := redisSpan[0]
	assert.Equal(t, trace.SpanKindClient, r.SpanKind)
	assert.Equal(t, testTrace, server[0].SpanContext.TraceID().String())
	assert.Equal(t, server[0].SpanContext.SpanID(), r.Parent.SpanID())
	assert.Equal(t, "redis", attrOf(r, "db.system.name").AsString())
	assert.Equal(t, "c", attrOf(r, tracing.AttrDestination).AsString())
	for _, exp := range []*tracetest.InMemoryExporter{expA, expB} {
		for _, name := range []string{tracing.SpanFanout, tracing.SpanDeliver} {
			s := named(exp, name)
			require.Len(t, s, 1, name)
			assert.Equal(t, r.SpanContext.TraceID(), s[0].SpanContext.TraceID(), name)
			assert.Equal(t, r.SpanContext.SpanID(), s[0].Parent.SpanID(), name)
		}
	}
	assert.Empty(t, named(expB, "EVALSHA"), "node B published nothing")
}

// What a traced node reads from Redis: an envelope without a traceparent
// (the Python SDK's), one with a traceparent over the bound, one that is
// not a W3C traceparent and one of the wrong type are all delivered, and
// make no span; a traced envelope reaching a node that does not trace is
// delivered as any other.
func TestTraceEnvelopeTraceparentBound(t *testing.T) {
	prefix := newPrefix(t, sharedRedis)
	exp := tracetest.NewInMemoryExporter()
	n := tracedNode(t, prefix, exp)
	off := tracedNode(t, prefix, nil)
	c := n.subscribe(t, "channel=e", "")
	cOff := off.subscribe(t, "channel=e", "")
	n.mustPublish(t, "e", "warm-up")
	c.RequireNext(t, "warm-up")
	cOff.RequireNext(t, "warm-up")
	rdb := rawClient(t, sharedRedis)
	valid := "00-" + testTrace + "-00f067aa0ba902b7-01"
	require.Len(t, valid, tracing.MaxTraceparent)
	for i, tp := range []string{
		``,
		`"traceparent":"` + valid + `0",`,
		`"traceparent":"` + strings.Repeat("x", 100) + `",`,
		`"traceparent":"00-00000000000000000000000000000000-00f067aa0ba902b7-01",`,
		`"traceparent":55,`,
		`"traceparent":null,`,
	} {
		payload := `{` + tp + `"data":"e` + string(rune('0'+i)) + `","event":null,"id":null,"retry":null}`
		require.NoError(t, rdb.Publish(context.Background(), prefix+":e", payload).Err())
		c.RequireNext(t, "e"+string(rune('0'+i)))
		cOff.RequireNext(t, "e"+string(rune('0'+i)))
	}
	require.NoError(t, rdb.Publish(context.Background(), prefix+":e",
		`{"traceparent":"`+valid+`","data":"ok","event":null,"id":null,"retry":null}`).Err())
	c.RequireNext(t, "ok")
	cOff.RequireNext(t, "ok")
	require.Eventually(t, func() bool { return len(named(exp, tracing.SpanDeliver)) == 1 }, wait, 10*time.Millisecond)
	for _, s := range exp.GetSpans() {
		assert.Equal(t, testTrace, s.SpanContext.TraceID().String(), "only the valid traceparent made spans: %s", s.Name)
	}
	assert.Len(t, exp.GetSpans(), 2, "its fanout and deliver spans")
	assert.Zero(t, n.relay.Malformed(), "no envelope was refused")
}

// The traceparent rides on the pub/sub message only: the history a
// resume replays from Redis holds none.
func TestTraceparentNotStored(t *testing.T) {
	prefix := newPrefix(t, sharedRedis)
	n := tracedNode(t, prefix, tracetest.NewInMemoryExporter())
	rdb := rawClient(t, sharedRedis)
	sub := rdb.Subscribe(context.Background(), prefix+":s")
	defer sub.Close()
	_, err := sub.Receive(context.Background())
	require.NoError(t, err)
	tracedPublish(t, n, `{"channel":"s","data":"x"}`)
	m, err := sub.ReceiveMessage(context.Background())
	require.NoError(t, err)
	assert.Contains(t, m.Payload, `"traceparent":"00-`)
	entries, err := rdb.XRange(context.Background(), prefix+":history:s", "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	for _, v := range entries[0].Values {
		assert.False(t, bytes.Contains([]byte(v.(string)), []byte("traceparent")), "stored: %v", entries[0].Values)
	}
}
