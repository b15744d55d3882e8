package httpedge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
)

// sink is an in-process client: a ResponseWriter that keeps nothing.
type sink struct{ header http.Header }

func (w *sink) Header() http.Header              { return w.header }
func (w *sink) Write(b []byte) (int, error)      { return len(b), nil }
func (w *sink) WriteHeader(int)                  {}
func (w *sink) Flush()                           {}
func (w *sink) SetWriteDeadline(time.Time) error { return nil }

type flushCount struct {
	actors.Observer
	n atomic.Int64
}

func (f *flushCount) Flushed(events int, _ time.Duration) { f.n.Add(int64(events)) }

// BenchmarkPublishTracing is one POST /publish through the edge's handler
// (in process, no socket) to one in-process subscriber, until written:
// tracing off (no TracerProvider), on with the publish not sampled, and on
// and sampled (a server span, a fanout span and a deliver span each,
// batched to an exporter that drops them).
func BenchmarkPublishTracing(b *testing.B) {
	for _, tc := range []struct {
		name string
		tp   func() *sdktrace.TracerProvider
	}{
		{"off", nil},
		{"unsampled", func() *sdktrace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()),
				sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		}},
		{"sampled", func() *sdktrace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			count := &flushCount{Observer: actorstest.NopObserver{}}
			hub := actorstest.NewHub(b, actors.Config{Observer: count, History: -1, Heartbeat: -1, FlushGap: -1})
			cfg := httpedge.Config{Hub: hub}
			if tc.tp != nil {
				tp := tc.tp()
				defer func() { _ = tp.Shutdown(context.Background()) }()
				cfg.TracerProvider = tp
			}
			edge := httpedge.New(cfg)
			s, err := hub.Open(&sink{header: http.Header{}}, actors.StreamOptions{Channels: []string{"c"}})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				s.Wait(ctx)
			}()
			body := `{"channel":"c","data":"` + strings.Repeat("x", 100) + `"}`
			publish := func() {
				req := httptest.NewRequest(http.MethodPost, "/publish", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				edge.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("publish: %d %s", w.Code, w.Body)
				}
			}
			publish() // the join is in before the first publish is routed
			for count.n.Load() < 1 {
				time.Sleep(50 * time.Microsecond)
			}
			n := int64(1)
			b.ReportAllocs()
			for b.Loop() {
				publish()
				n++
				// Spinning, not sleeping: a sleep of a microsecond lasts
				// tens of them and would be most of what this measures.
				for count.n.Load() < n {
					runtime.Gosched()
				}
			}
		})
	}
}
