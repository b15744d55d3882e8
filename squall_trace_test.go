package squall_test

import (
	"net/http"
	"slices"
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
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			defer func() { _ = tp.Shutdown(t.Context()) }()
			tc.cfg.TracerProvider = tp
			_, srv := mounted(t, tc.cfg)
			c := ssetest.Subscribe(t, srv.URL+"/sse/events?channel=t", ssetest.Options{})
			code, out := publish(t, srv.URL+"/sse/publish", `{"channel":"t","data":"x"}`)
			require.Equal(t, http.StatusAccepted, code, "%s", out)
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
