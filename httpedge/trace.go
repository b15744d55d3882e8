package httpedge

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/internal/tracing"
)

// traced wraps a publish handler (POST /publish or /publish/batch) in its server span, a child of the
// request's W3C traceparent when it has one. With tracing off it returns h
// itself: not a branch, not an allocation per publish.
//
// The span follows the HTTP server semantic conventions: named
// "POST /publish", with the method, route, path, scheme and status code,
// and an Error status only for a 5xx (a 4xx is the client's fault, not
// the server's). No header is recorded: a token never reaches a span.
func (s *Server) traced(route string, h http.HandlerFunc) http.HandlerFunc {
	if s.tracer == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := tracing.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		ctx, span := s.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("http.route", route),
				attribute.String("url.path", r.URL.Path),
				attribute.String("url.scheme", scheme),
				attribute.String("network.protocol.version", protocolVersion(r)),
			))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
			span.SetStatus(codes.Error, "")
		}
	}
}

func protocolVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	return "1." + strconv.Itoa(r.ProtoMinor)
}

// traceChecked names the channel on the publish's span and, in memory mode,
// has the hub carry the span to the event's fanout and first delivery. In
// cluster mode the relay does that from the Redis publish's span instead,
// on every node. The channel is a span attribute (spans are sampled), never
// a metric label.
func (s *Server) traceChecked(r *http.Request, c actors.Checked) actors.Checked {
	if s.tracer == nil {
		return c
	}
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return c
	}
	span.SetAttributes(tracing.AttrDestination.String(c.Channel()))
	if s.cfg.Hub.Config().Cluster != nil {
		return c
	}
	return c.WithTrace(s.tracer.Delivery(r.Context(), c.Channel()))
}
