package loadgen

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/squall-sse/squall/bench/internal/baseline"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startBaseline(t *testing.T, cfg baseline.Config) string {
	t.Helper()
	s := baseline.New(cfg)
	require.NoError(t, s.Start("127.0.0.1:0"), "baseline Start")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, s.Shutdown(ctx), "baseline Shutdown")
	})
	return "http://" + s.Addr()
}

// TestRunAgainstBaseline runs every scenario, small, against in-process
// baselines: what the generator counts must add up with no errors.
func TestRunAgainstBaseline(t *testing.T) {
	tests := []struct {
		scenario string
		servers  int
		batch    int
		check    []string // metrics that must be positive
	}{
		{"fanout", 1, 0, []string{"deliveries/s flat out (20 streams)", "heap+stack per idle stream", "goroutines per stream"}},
		{"many-channels", 1, 0, []string{"deliveries/s flat out", "publish rate reached @ 100 ev/s over 10 channels"}},
		{"many-channels", 1, 4, []string{"deliveries/s flat out", "deliveries/s flat out, batches of 4", "publishes/s flat out, batches of 4"}},
		{"slow-consumer", 1, 0, []string{"p99 latency channel with 1 stalled", "p99 latency control channel", "p99 stalled channel / control, same time"}},
		{"reconnect-storm", 1, 0, []string{"time until all streams resumed", "p99 time to resume one stream"}},
		{"cluster", 2, 0, []string{"deliveries/s flat out"}},
	}
	for _, tt := range tests {
		name := tt.scenario
		if tt.batch > 1 {
			name += fmt.Sprintf(" batches of %d", tt.batch)
		}
		t.Run(name, func(t *testing.T) {
			cfg := baseline.Config{}
			if tt.servers > 1 {
				cfg.Redis = "redis://127.0.0.1:6379/0"
				cfg.RedisPrefix = fmt.Sprintf("loadgen-test-%d", time.Now().UnixNano())
				t.Cleanup(func() {
					rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
					defer rdb.Close()
					assert.NoError(t, rdb.Del(context.Background(), cfg.RedisPrefix+":id:cluster").Err(), "delete the test's key")
				})
			}
			var servers []string
			var pids []int
			for range tt.servers {
				servers = append(servers, startBaseline(t, cfg))
				pids = append(pids, os.Getpid())
			}
			res, err := Run(context.Background(), Config{
				Scenario: tt.scenario,
				Servers:  servers,
				PIDs:     pids,
				Conns:    20,
				Duration: 300 * time.Millisecond,
				Rate:     100,
				Batch:    tt.batch,
				Stalled:  1,
				Settle:   10 * time.Millisecond,
				CutWait:  200 * time.Millisecond,
			})
			require.NoError(t, err, "Run")
			assert.Empty(t, res.Errors, "errors")
			for _, name := range append(tt.check, "lost events", "duplicate events") {
				m, ok := res.Get(name)
				require.True(t, ok, "metric %q in %+v", name, res.Metrics)
				if name == "lost events" || name == "duplicate events" {
					assert.Zero(t, m.Value, name)
					continue
				}
				assert.False(t, m.Missing, name)
				assert.Positive(t, m.Value, name)
			}
		})
	}
}

func TestRunRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"unknown scenario", Config{Scenario: "nope", Servers: []string{"http://127.0.0.1:1"}}},
		{"cluster with one server", Config{Scenario: "cluster", Servers: []string{"http://127.0.0.1:1"}}},
		{"more streams than descriptors", Config{Scenario: "fanout", Servers: []string{"http://127.0.0.1:1"}, Conns: 1 << 30}},
		{"no server", Config{Scenario: "fanout"}},
		{"batch too long", Config{Scenario: "many-channels", Servers: []string{"http://127.0.0.1:1"}, Batch: MaxBatch + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			assert.Error(t, err)
		})
	}
}

func TestRunReportsUnreachableServer(t *testing.T) {
	res, err := Run(context.Background(), Config{Scenario: "fanout", Servers: []string{"http://127.0.0.1:1"}, Conns: 2, SyncTimeout: time.Second})
	require.NoError(t, err, "Run")
	assert.NotEmpty(t, res.Errors, "a server that is not there is an error")
}
