// Command squall runs the Squall SSE hub: GET /events, POST /publish,
// GET /healthz, GET /readyz, GET /metrics and the demo page at GET /, in
// memory by default.
//
// The hub is a squall.Broker, built by squall.New from the flags, as a
// program that embeds Squall builds it; this command adds the HTTP server
// (timeouts, connection limits, TLS, HTTP/2), signals and the drain.
//
// Every flag has an environment equivalent, SQUALL_ and the flag name in
// upper case with dashes as underscores (--max-body → SQUALL_MAX_BODY); a
// flag given on the command line wins over the environment.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

func main() {
	fixedStacks()
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "squall:", err)
		os.Exit(1)
	}
}

// fixedStacks re-executes the hub with GODEBUG=adaptivestackstart=0 unless
// GODEBUG already sets it. Why: with the adaptive start, the runtime starts
// new goroutines at the average stack size it scanned, which the goroutines
// that write to clients push to 4 KB; the goroutine net/http starts for each
// stream to watch its connection then keeps 4 KB it never uses, for the life
// of the stream: about 2 KB more per idle stream (measured by the bench
// suite: 29.5 KB against 27.8 KB of heap and stack per idle stream), and it
// was no faster (fanout flat out, two runs: 1.04× and 0.67× the baseline,
// against 1.1× to 1.3× with fixed stacks). Embedders get the same by setting the
// variable themselves; GODEBUG=adaptivestackstart=1 keeps the default.
func fixedStacks() {
	godebug := os.Getenv("GODEBUG")
	if strings.Contains(godebug, "adaptivestackstart=") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if godebug != "" {
		godebug += ","
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	env = append(env, "GODEBUG="+godebug+"adaptivestackstart=0")
	// Exec returns only when it failed: the hub then runs as it is.
	_ = syscall.Exec(exe, os.Args, env)
}

type options struct {
	addr       string
	heartbeat  time.Duration
	beatEvent  string
	writeTO    time.Duration
	flushGap   time.Duration
	fixedGap   bool
	maxBody    int64
	history    int
	historyTTL time.Duration
	histBytes  int
	histBudget int64
	drain      time.Duration
	overflow   string
	logFormat  string
	logLevel   string
	pprof      bool
	redisURL   string
	prefix     string
	sentinel   string
	interest   string
	sharded    bool
	edge       edgeOptions
	serve      serveOptions
	traces     traceOptions
}

func parse(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("squall", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", ":8080", "listen address")
	fs.DurationVar(&o.heartbeat, "heartbeat", 15*time.Second, "idle time before a keepalive comment; 0 disables")
	fs.StringVar(&o.beatEvent, "heartbeat-event", "", `send heartbeats as this named event (e.g. "ping") instead of a comment`)
	fs.DurationVar(&o.writeTO, "write-timeout", 10*time.Second, "bound on every write to a client (a write may get up to a quarter more); also the TCP user timeout that reaps vanished peers")
	fs.DurationVar(&o.flushGap, "flush-gap", 20*time.Millisecond, "longest a client that falls behind its events waits to get them in one write; 0 writes each wake-up at once")
	fs.BoolVar(&o.fixedGap, "flush-gap-fixed", false, "every client waits out --flush-gap between two writes of events, not only one that falls behind")
	fs.Int64Var(&o.maxBody, "max-body", 1<<20, "largest publish body in bytes")
	fs.IntVar(&o.history, "history", 1000, "events kept per channel for Last-Event-ID resume; 0 disables")
	fs.DurationVar(&o.historyTTL, "history-ttl", 10*time.Minute, "how long an event stays replayable; 0 keeps by count only")
	fs.IntVar(&o.histBytes, "history-bytes", 4<<20, "memory mode: bytes of history kept per channel (oldest evicted first); 0 means no byte bound")
	fs.Int64Var(&o.histBudget, "history-budget", 256<<20, "memory mode: bytes of history kept by all channels together, oldest evicted first; 0 means no budget")
	fs.DurationVar(&o.drain, "drain", 5*time.Second, "on SIGTERM, how long open streams get to close")
	fs.StringVar(&o.overflow, "overflow", "disconnect", "slow-consumer policy: disconnect, drop-oldest or drop-newest")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.redisURL, "redis", "", "Redis URL for cluster mode: redis://[user:pass@]host:port/db (rediss:// for TLS); a Redis Cluster as redis+cluster://host:port,host:port; with --redis-sentinel, the Sentinels' addresses; empty runs in memory")
	fs.StringVar(&o.prefix, "redis-prefix", "sse", "prefix of the Redis channels and history streams; the same on every node")
	fs.StringVar(&o.sentinel, "redis-sentinel", "", "master name watched by the Sentinels that --redis names")
	fs.StringVar(&o.interest, "redis-interest", "channels", "what a node subscribes to: channels (those its streams are on) or all (one pattern, every event)")
	fs.BoolVar(&o.sharded, "redis-sharded", false, "on a Redis Cluster, sharded pub/sub (SPUBLISH/SSUBSCRIBE): each event stays in its shard, but Python SDK producers and PSUBSCRIBE subscribers no longer see Squall's channels; the same on every node")
	fs.BoolVar(&o.pprof, "pprof", false, "serve /debug/pprof/ and /debug/memstats (for the bench suite)")
	o.edge.register(fs)
	o.serve.register(fs)
	o.traces.register(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "SQUALL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && !set[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return o, err
}

func newLogger(o options, w *os.File) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr *os.File) error {
	o, err := parse(args, getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	if err := sse.ValidName(o.beatEvent); err != nil {
		return fmt.Errorf("--heartbeat-event: %w", err)
	}
	overflow, err := actors.ParseOverflow(o.overflow)
	if err != nil {
		return err
	}
	cfg := squall.Config{
		Logger:         log,
		Heartbeat:      o.heartbeat,
		HeartbeatEvent: o.beatEvent,
		WriteTimeout:   o.writeTO,
		FlushGap:       o.flushGap,
		FixedFlushGap:  o.fixedGap,
		Overflow:       overflow,
		MaxBody:        o.maxBody,
		History:        o.history,
		HistoryTTL:     o.historyTTL,
		HistoryBytes:   o.histBytes,
		HistoryBudget:  o.histBudget,
	}
	// The flags say 0 for "off"; the library says negative.
	if o.heartbeat == 0 {
		cfg.Heartbeat = -1
	}
	if o.history == 0 {
		cfg.History = -1
	}
	if o.flushGap == 0 {
		cfg.FlushGap = -1
	}
	if o.historyTTL == 0 {
		cfg.HistoryTTL = -1
	}
	if o.histBytes <= 0 {
		cfg.HistoryBytes = -1
	}
	if o.histBudget <= 0 {
		cfg.HistoryBudget = -1
	}
	tp, stopTraces, err := o.traces.start(ctx, log)
	if err != nil {
		return err
	}
	defer stopTraces()
	cfg.TracerProvider = tp
	if err := o.edge.configure(&cfg, log); err != nil {
		return err
	}
	defer o.edge.close()
	if cfg.PublishLimits, err = o.serve.publish.limits(); err != nil {
		return err
	}
	mode := "memory"
	if o.redisURL != "" {
		mode = "cluster"
		switch o.interest {
		case "channels":
			cfg.RedisInterest = redisrelay.InterestChannels
		case "all":
			cfg.RedisInterest = redisrelay.InterestAll
		default:
			return fmt.Errorf("--redis-interest %q: want channels or all", o.interest)
		}
		cfg.RedisURL, cfg.RedisPrefix, cfg.RedisSentinelMaster, cfg.RedisSharded = o.redisURL, o.prefix, o.sentinel, o.sharded
	}
	limits, files := o.serve.connLimits(o.edge.trustProxy)
	log.Info("connections", "open_files", files, "max_conns", limits.Max, "max_conns_per_ip", limits.MaxPerPeer)
	cfg.MaxStreams = fitStreams(cfg.MaxStreams, limits, log)
	broker, err := squall.New(cfg)
	if errors.Is(err, redisrelay.ErrAdminInterval) {
		return fmt.Errorf("--admin-interval: %w", err)
	}
	if err != nil {
		return err
	}
	if o.pprof {
		mountDebug(broker)
	}

	ln, err := listen(ctx, o.addr, o.writeTO, o.heartbeat)
	if err != nil {
		_ = broker.Shutdown(ctx)
		return err
	}
	lim := httpedge.NewConnLimiter(ln, limits)
	broker.ObserveConns(lim)
	srv := o.serve.server(broker, lim, log)
	log.Info("squall listening", "addr", ln.Addr().String(), "mode", mode)

	signalled, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Two goroutines: the server, and the one that stops everything when
	// a signal comes or the server fails (the group's context ends on
	// either). run returns once both have.
	g, gctx := errgroup.WithContext(signalled)
	g.Go(func() error {
		if err := o.serve.serve(srv, lim, log); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil // shut down below
	})
	g.Go(func() error {
		<-gctx.Done()
		if signalled.Err() == nil {
			// The server failed: nothing is left to drain.
			_ = broker.Shutdown(context.Background())
			return nil
		}
		return shutdown(log, o.drain, broker, srv)
	})
	return g.Wait()
}

// mountDebug serves pprof and a memory snapshot taken right after a GC, which
// the bench suite reads to compute memory per idle connection.
func mountDebug(b *squall.Broker) {
	b.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
	b.Handle("/debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	b.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	b.Handle("/debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	b.Handle("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	b.Handle("GET /debug/memstats", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]uint64{
			"heap_inuse": m.HeapInuse, "stack_inuse": m.StackInuse, "sys": m.Sys,
			"goroutines": uint64(runtime.NumGoroutine()),
		})
	}))
}
