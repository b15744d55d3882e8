package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/squall-sse/squall/bench/internal/loadgen"
)

// loadgenMain runs one scenario against running servers and prints the
// loadgen.Result as JSON on stdout; progress goes to stderr.
func loadgenMain(args []string) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var cfg loadgen.Config
	servers := fs.String("servers", "http://127.0.0.1:8080", "comma-separated base URLs of the servers; publishes go to the first")
	pids := fs.String("pids", "", "comma-separated process ids of the servers, for RSS and CPU (optional)")
	fs.StringVar(&cfg.Scenario, "scenario", "fanout", "one of "+strings.Join(loadgen.Scenarios, ", "))
	fs.IntVar(&cfg.Conns, "conns", 200, "reading streams (slow-consumer: per channel)")
	fs.IntVar(&cfg.Payload, "payload", 100, "event data size in bytes")
	fs.DurationVar(&cfg.Duration, "duration", time.Second, "length of each measured phase")
	fs.Float64Var(&cfg.Rate, "rate", 200, "events/s of the fixed-rate phases")
	rates := fs.String("rates", "", "fanout: comma-separated rates, one fixed-rate phase each (default: -rate)")
	fs.IntVar(&cfg.LatencyConns, "latency-conns", 0, "fanout: streams kept for the fixed-rate phase (0: all)")
	fs.IntVar(&cfg.SubsPerChannel, "subs-per-channel", 2, "many-channels: streams per channel")
	fs.IntVar(&cfg.Stalled, "stalled", 1, "slow-consumer: streams that stop reading")
	fs.DurationVar(&cfg.StallDuration, "stall-duration", 0, "slow-consumer: length of the phase with stalled streams (0: -duration)")
	fs.IntVar(&cfg.StalledRcvBuf, "stalled-rcvbuf", 4096, "slow-consumer: SO_RCVBUF of the stalled streams")
	fs.IntVar(&cfg.Publishers, "publishers", 4, "concurrent publishing connections")
	fs.IntVar(&cfg.Batch, "batch", 1, fmt.Sprintf("many-channels: above 1, a second flat-out phase with this many events per POST /publish/batch (at most %d)", loadgen.MaxBatch))
	fs.IntVar(&cfg.Window, "window", 32, "flat out: undelivered events allowed per stream before publishing pauses")
	fs.IntVar(&cfg.Sources, "sources", 8, "source addresses 127.0.0.2 upwards")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 512, "connection attempts in flight")
	fs.DurationVar(&cfg.Settle, "settle", time.Second, "pause before measuring idle memory")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "fanout, many-channels: save a CPU profile of the first server during the (first) flat-out phase to this file")
	fs.StringVar(&cfg.BatchCPUProfile, "batch-cpuprofile", "", "many-channels: save a CPU profile of the first server during the batched flat-out phase to this file")
	fs.StringVar(&cfg.HeapProfile, "heapprofile", "", "fanout: save a heap profile of the first server while its streams are idle to this file")
	genProfile := fs.String("genprofile", "", "write the generator's own CPU profile to this file")
	quiet := fs.Bool("q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Batch < 1 || cfg.Batch > loadgen.MaxBatch {
		fmt.Fprintf(os.Stderr, "loadgen: -batch wants 1 to %d, not %d\n", loadgen.MaxBatch, cfg.Batch)
		return 2
	}
	cfg.Servers = strings.Split(*servers, ",")
	if *rates != "" {
		for _, x := range strings.Split(*rates, ",") {
			v, err := strconv.ParseFloat(x, 64)
			if err != nil || v <= 0 {
				fmt.Fprintf(os.Stderr, "loadgen: bad rate %q\n", x)
				return 2
			}
			cfg.Rates = append(cfg.Rates, v)
		}
	}
	if *pids != "" {
		for _, p := range strings.Split(*pids, ",") {
			n, err := strconv.Atoi(p)
			if err != nil {
				fmt.Fprintf(os.Stderr, "loadgen: bad pid %q\n", p)
				return 2
			}
			cfg.PIDs = append(cfg.PIDs, n)
		}
	}
	if !*quiet {
		cfg.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
		}
	}
	if *genProfile != "" {
		f, err := os.Create(*genProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}
