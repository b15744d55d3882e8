package redisrelay

import (
	"context"
	"encoding/json"

	"github.com/go-json-experiment/json/jsontext"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/internal/tracing"
)

// Tracing, when Config.TracerProvider is set:
//
//   - a publish is a client span (database semantic conventions: Redis,
//     EVALSHA) under the caller's span;
//   - the span's W3C traceparent rides in the envelope's "traceparent"
//     member, on the pub/sub message only (never in the stored history),
//     so that every node, this one included, records the event's fanout
//     and first delivery under it. Peers that do not trace, older Squall
//     nodes and the Python SDK ignore a member they do not know;
//   - a "traceparent" read from Redis is at most tracing.MaxTraceparent
//     bytes and a valid W3C traceparent, or ignored: a bad trace context
//     never costs the event.
//
// Without a TracerProvider none of this runs: no span, no member, no
// allocation.

// startPublish starts the publish's client span; nil when tracing is off
// or the caller's trace is not sampled.
func (r *Relay) startPublish(ctx context.Context, channel string) (context.Context, trace.Span) {
	if r.tracer == nil {
		return ctx, nil
	}
	ctx, span := r.tracer.Start(ctx, "EVALSHA", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "redis"),
			attribute.String("db.operation.name", "EVALSHA"),
			tracing.AttrDestination.String(channel),
		))
	if !span.IsRecording() {
		return ctx, nil
	}
	return ctx, span
}

// traceArgs puts the traceparent of the span in ctx into the envelope's head
// (args[1], which ends with a comma: the script appends the rest).
func traceArgs(ctx context.Context, span trace.Span, args []any) {
	if span == nil {
		return
	}
	tp := tracing.Traceparent(ctx)
	if tp == "" {
		return
	}
	head := args[1].([]byte)
	h := make([]byte, 0, len(head)+len(tp)+20)
	h = append(h, head...)
	h = append(h, `"traceparent":`...)
	h = appendJSONString(h, tp)
	args[1] = append(h, ',')
}

// endPublish ends the publish's span, failed when err is set.
func endPublish(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		tracing.Fail(span, "redis", err)
	}
	span.End()
}

// traced has the hub carry the envelope's trace context (raw, as read) to
// the event's fanout and first delivery on this node.
func (r *Relay) traced(c actors.Checked, raw jsontext.Value) actors.Checked {
	if r.tracer == nil || raw == nil {
		return c
	}
	// The bound is checked on the raw JSON: a longer string is not even
	// unquoted.
	if len(raw) > tracing.MaxTraceparent+2 || raw.Kind() != '"' {
		return c
	}
	var tp string
	if json.Unmarshal(raw, &tp) != nil {
		return c
	}
	return c.WithTrace(r.tracer.Delivery(tracing.Remote(tp), c.Channel()))
}
