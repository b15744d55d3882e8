package squall_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/internal/ssetest"
)

// Config.TracerProvider reaches the edge and, in cluster mode, the relay.
func TestBrokerTracerProvider(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  squall.Config
		want []string
	}{
		{"memory", squall.Config{}, []string{"POST /publish", "squall deliver", "squall fanout"}},
		{"cluster", squall.Config{RedisURL: sharedRedis, RedisPrefix: newPrefix(t)},
			[]string{"EVALSHA", "POST /publish", "squall deliver", "squall fanout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			// Only publishes under a sampled traceparent are traced.
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
				sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
			defer func() { _ = tp.Shutdown(t.Context()) }()
			tc.cfg.TracerProvider = tp
			_, srv := mounted(t, tc.cfg)
			c := ssetest.Subscribe(t, srv.URL+"/sse/events?channel=t", ssetest.Options{})
			// In cluster mode, an event read by the catch-up that follows
			// the node's subscription to the channel has no trace context:
			// the spans looked at are those of the event after it.
			code, out := publish(t, srv.URL+"/sse/publish", `{"channel":"t","data":"warm-up"}`)
			require.Equal(t, http.StatusAccepted, code, "%s", out)
			c.RequireNext(t, "warm-up")
			require.Empty(t, exp.GetSpans(), "an untraced publish")
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/sse/publish", strings.NewReader(`{"channel":"t","data":"x"}`))
			require.NoError(t, err)
			req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			c.RequireNext(t, "x")
			var names []string
			require.Eventually(t, func() bool {
				names = names[:0]
				for _, s := range exp.GetSpans() {
					names = append(names, s.Name)
				}
				slices.Sort(names)
				return slices.Equal(tc.want, names)
			}, wait, 10*time.Millisecond, "spans %v", names)
			assert.Equal(t, tc.want, names)
		})
	}
}
