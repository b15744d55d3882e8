// Package tracing is Squall's OpenTelemetry tracing, shared by the HTTP
// edge and the Redis relay: the tracer, the spans' names and attributes,
// and the [actors.Trace] that carries a publish's span context to its
// fanout and first delivery. A nil *Tracer is tracing off: every method is
// then a no-op that allocates nothing, so the callers need no branch.
package tracing

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/squall-sse/squall/actors"
)

// ScopeName is the instrumentation scope of every span Squall makes.
const ScopeName = "github.com/squall-sse/squall"

// Span names. The channel is never in a name (names must be of low
// cardinality); it is the attribute messaging.destination.name.
const (
	SpanFanout  = "squall fanout"
	SpanDeliver = "squall deliver"
)

// Attribute keys of Squall's own, beside the semantic conventions'.
const (
	// AttrSubscribers is how many streams of the node the event was
	// queued for.
	AttrSubscribers = attribute.Key("squall.subscribers")
	// AttrDestination is the channel (messaging semantic conventions).
	AttrDestination = attribute.Key("messaging.destination.name")
	attrSystem      = attribute.Key("messaging.system")
	attrOperation   = attribute.Key("messaging.operation.name")
)

// MaxTraceparent bounds a traceparent read from outside (a Redis envelope):
// a version-00 traceparent is 55 bytes; later versions may append fields,
// which are not read.
const MaxTraceparent = 55

// Tracer makes Squall's spans. Nil is tracing off.
type Tracer struct {
	t trace.Tracer
}

// New returns a Tracer on tp, or nil (tracing off) when tp is nil.
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{t: tp.Tracer(ScopeName)}
}

// Start starts a span as trace.Tracer.Start does.
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return t.t.Start(ctx, name, opts...)
}

// Delivery returns the carrier of an event entering the hub on channel
// under the span in ctx, or nil when that span is not sampled (or t is
// nil): an unsampled publish costs the hub nothing more.
func (t *Tracer) Delivery(ctx context.Context, channel string) actors.Trace {
	if t == nil {
		return nil
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsSampled() {
		return nil
	}
	return &delivery{t: t.t, parent: sc, channel: channel, start: time.Now()}
}

// delivery is an [actors.Trace]: its spans are made when the hub reports,
// each with its start and end already known, so no span is ever left open
// (an event nobody receives leaves a fanout span and no deliver span).
type delivery struct {
	t       trace.Tracer
	parent  trace.SpanContext
	channel string
	start   time.Time // when the event entered this node's hub
}

func (d *delivery) span(name string, attrs ...attribute.KeyValue) {
	ctx := trace.ContextWithSpanContext(context.Background(), d.parent)
	_, s := d.t.Start(ctx, name, trace.WithTimestamp(d.start), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attrs...))
	s.End()
}

// FannedOut records the span from the event entering the hub to its
// channel actor having queued it for every subscriber of this node.
func (d *delivery) FannedOut(subscribers int) {
	d.span(SpanFanout, attrSystem.String("squall"), attrOperation.String("fanout"),
		AttrDestination.String(d.channel), AttrSubscribers.Int(subscribers))
}

// Delivered records the span from the event entering the hub to the first
// completed write of it to a subscriber of this node.
func (d *delivery) Delivered() {
	d.span(SpanDeliver, attrSystem.String("squall"), attrOperation.String("deliver"),
		AttrDestination.String(d.channel))
}

// propagator is W3C Trace Context only: Squall reads and writes
// traceparent, not the process's global propagator, so that what crosses
// Redis is bounded and known.
var propagator = propagation.TraceContext{}

// Extract returns ctx with the remote span context of a traceparent header
// (and tracestate) in h, when valid.
func Extract(ctx context.Context, h propagation.TextMapCarrier) context.Context {
	return propagator.Extract(ctx, h)
}

// Traceparent is the traceparent of the span in ctx, "" when none is valid
// or it is not sampled (a peer would make no span of it).
func Traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// Remote returns a context holding the span context of traceparent, or
// context.Background() with none when it is over [MaxTraceparent] bytes or
// invalid: a bad trace context is ignored, never a reason to drop the
// event it came with.
func Remote(traceparent string) context.Context {
	ctx := context.Background()
	if traceparent == "" || len(traceparent) > MaxTraceparent {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// Fail marks s as failed with err (the error.type attribute and an Error
// status), as the semantic conventions ask of a client span whose
// operation failed.
func Fail(s trace.Span, errType string, err error) {
	s.SetAttributes(attribute.String("error.type", errType))
	s.SetStatus(codes.Error, err.Error())
}
