package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/squall-sse/squall/bench/internal/baseline"
)

// baselineMain runs the baseline server with the hub's flag names, so the
// orchestrator starts both the same way. Flags the baseline has no use for
// (--heartbeat) are accepted and ignored.
func baselineMain(args []string) int {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	redisURL := fs.String("redis", "", "Redis URL for cluster mode (redis://127.0.0.1:6379/0); empty means in memory")
	prefix := fs.String("redis-prefix", "sse", "prefix of Redis keys and channels")
	history := fs.Int("history", 1000, "events kept per channel for Last-Event-ID; negative disables")
	queue := fs.Int("queue", 256, "frames queued per stream before it is closed as too slow")
	pprofOn := fs.Bool("pprof", false, "serve net/http/pprof under /debug/pprof/")
	fs.Duration("heartbeat", 15*time.Second, "accepted for compatibility with squall; the baseline sends no heartbeat")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s := baseline.New(baseline.Config{
		QueueLen:    *queue,
		History:     *history,
		Redis:       *redisURL,
		RedisPrefix: *prefix,
		Pprof:       *pprofOn,
		Logger:      log,
	})
	if err := s.Start(*addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "baseline: shutdown:", err)
		return 1
	}
	return 0
}
