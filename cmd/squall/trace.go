package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// traceOptions turns OpenTelemetry tracing on. Everything else about it
// (endpoint, headers, sampler, batch sizes, service name) is the standard
// OTEL_* environment, read by the SDK and the OTLP exporter themselves.
type traceOptions struct {
	on bool
}

func (o *traceOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.on, "otel-traces", false, "export OpenTelemetry traces of publishes over OTLP/HTTP, configured by the standard OTEL_* variables; also on when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set")
}

// enabled says whether tracing is on: the flag, or an OTLP endpoint in the
// environment (an exporter configured, as OpenTelemetry deployments do it),
// unless the environment turns the SDK or the traces exporter off. Only
// OTLP over HTTP with protobuf is built in: another exporter or protocol
// asked for is an error rather than silently no traces.
func (o *traceOptions) enabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false, nil
	}
	switch e := getenv("OTEL_TRACES_EXPORTER"); e {
	case "none":
		return false, nil
	case "", "otlp":
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp (or none) is built in", e)
	}
	for _, p := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := getenv(p); v != "" && v != "http/protobuf" {
			return false, fmt.Errorf("%s=%q: only http/protobuf is built in", p, v)
		}
	}
	return o.on || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
}

// start returns the tracer provider the edge and the relay trace through,
// nil when tracing is off, and what flushes and stops it at exit.
func (o *traceOptions) start(ctx context.Context, log *slog.Logger) (trace.TracerProvider, func(), error) {
	on, err := o.enabled(os.Getenv)
	if err != nil || !on {
		return nil, func() {}, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// service.name is "squall" unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES say otherwise (the later detector wins).
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", "squall")), resource.WithFromEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based,
	// always on), the batching from OTEL_BSP_*.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	// A collector that is down fails each batch (one every 5 s by
	// default): into the hub's log, not the SDK's own stderr logger.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing error", "err", err) }))
	log.Info("tracing", "exporter", "otlp/http")
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("tracing shutdown", "err", err)
		}
	}, nil
}
