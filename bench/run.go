package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/squall-sse/squall/bench/internal/loadgen"
)

// mode holds the parameters of a quick or a full run.
type mode struct {
	name     string
	conns    int
	payload  int
	duration time.Duration
	settle   time.Duration
	// per-scenario settings
	fanoutRates            []float64 // the last one is the latency target
	fanoutLatencyConns     int
	manyRate               float64
	manyBatch              int // events per request of many-channels' second flat-out phase
	slowConns, slowStalled int
	slowRate               float64 // per channel
	slowStallDuration      time.Duration
	stormRate              float64
	clusterRate            float64
	capacityConns          int           // the capacity scenario's last step
	timeout                time.Duration // per generator run
}

var (
	quickMode = mode{
		name: "quick", conns: 200, payload: 100, duration: time.Second, settle: 300 * time.Millisecond,
		fanoutRates: []float64{200}, fanoutLatencyConns: 200,
		manyRate: 1000, manyBatch: 16,
		slowConns: 100, slowStalled: 2, slowRate: 100, slowStallDuration: time.Second,
		stormRate:   50,
		clusterRate: 200, capacityConns: 200,
		timeout: 2 * time.Minute,
	}
	fullMode = mode{
		name: "full", conns: 10000, payload: 100, duration: 10 * time.Second, settle: 2 * time.Second,
		// 1,000 events/s to 1,000 streams is the latency target;
		// 100 events/s is a load this machine sustains, for a latency
		// that is not a saturated server's.
		fanoutRates: []float64{100, 1000}, fanoutLatencyConns: 1000,
		manyRate: 2000,
		// Publish-bound flat out, one event per request: batches show
		// what the request overhead costs, on both servers alike.
		manyBatch: 16,
		// The stalled phase outlasts both servers' 10 s write timeout, so
		// that they close the stalled stream while being measured.
		slowConns: 1000, slowStalled: 1, slowRate: 50, slowStallDuration: 15 * time.Second,
		stormRate:   5,
		clusterRate: 5,
		// Just under the streams the hub admits with the 20,000
		// descriptors each process gets here: 18,976 connections (a
		// reserve of 1,024), of which 17,079 streams.
		capacityConns: 17_000,
		timeout:       10 * time.Minute,
	}
)

// loadgenArgs are the generator flags for one scenario in mode m.
func (m mode) loadgenArgs(scenario string) []string {
	a := []string{
		"-scenario", scenario,
		"-conns", strconv.Itoa(m.conns),
		"-payload", strconv.Itoa(m.payload),
		"-duration", m.duration.String(),
		"-settle", m.settle.String(),
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	switch scenario {
	case "fanout":
		var rs []string
		for _, x := range m.fanoutRates {
			rs = append(rs, f(x))
		}
		a = append(a, "-rates", strings.Join(rs, ","), "-latency-conns", strconv.Itoa(m.fanoutLatencyConns))
	case "many-channels":
		a = append(a, "-rate", f(m.manyRate), "-publishers", "8", "-batch", strconv.Itoa(m.manyBatch))
	case "slow-consumer":
		a = append(a, "-rate", f(m.slowRate), "-stalled", strconv.Itoa(m.slowStalled),
			"-stall-duration", max(m.slowStallDuration, m.duration).String())
		a[3] = strconv.Itoa(min(m.slowConns, m.conns)) // streams per channel
	case "reconnect-storm":
		a = append(a, "-rate", f(m.stormRate))
	case "cluster":
		a = append(a, "-rate", f(m.clusterRate))
	case "capacity":
		a[3] = strconv.Itoa(m.capacityConns)
	}
	return a
}

type system struct {
	name string
	bin  string
	self bool // the bench binary's own "baseline" subcommand
}

// outcome is one scenario against one system.
type outcome struct {
	res     *loadgen.Result
	err     error  // the run broke: a process failed, the generator crashed
	skipped string // why the run was not made
	// With -rounds above 1: each round's result; res holds their medians.
	rounds []*loadgen.Result
}

// options are the orchestrator's command line.
type options struct {
	m         mode
	scenarios []string
	systems   string
	squallBin string
	redisURL  string
	out       string
	profile   string
	verbose   bool
	rounds    int
	// scaleSteps overrides the scale scenario's stream counts.
	scaleSteps []int
}

func runMain(args []string) int {
	o, code := parseOptions(args)
	if code != 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "squall-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(work)
	procs := newChildren(work, o.verbose)
	defer procs.stopAll()

	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	syss, broken, code := o.systemsToRun(ctx, work, self)
	if code != 0 {
		return code
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}

	r := &runner{
		ctx: ctx, m: o.m, procs: procs, self: self, redisURL: o.redisURL, profileDir: o.profile, scaleSteps: o.scaleSteps,
		results: map[string]map[string]outcome{}, loadBefore: loadAvg(),
	}
	began := time.Now()
	for _, sc := range o.scenarios {
		r.results[sc] = r.rounds(sc, syss, o.rounds)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted")
		return 130
	}
	rep := r.report(o.scenarios, syss, time.Since(began), os.Args[1:])
	fmt.Print(rep.text)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep.markdown), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	if broken || rep.failed {
		return 1
	}
	return 0
}

// parseOptions reads the command line; a non-zero code is the exit status
// of a command line that is wrong.
func parseOptions(args []string) (options, int) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage+"\nflags:\n")
		fs.PrintDefaults()
	}
	var o options
	quick := fs.Bool("quick", false, "small N, about a second per phase: the CI check (whole run under a minute)")
	conns := fs.Int("conns", 0, "override the number of streams")
	duration := fs.Duration("duration", 0, "override the length of each phase")
	payload := fs.Int("payload", 0, "override the payload size in bytes")
	fs.StringVar(&o.systems, "systems", "squall,baseline", "servers to measure: squall, baseline or both")
	fs.StringVar(&o.squallBin, "squall-bin", "", "use this squall binary instead of building ./cmd/squall")
	fs.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis for the cluster scenario")
	fs.StringVar(&o.out, "out", "", "also write the report as markdown to this file")
	fs.StringVar(&o.profile, "profile", "", "save CPU profiles of each server during fanout's flat-out phase to this directory and print their top entries")
	fs.BoolVar(&o.verbose, "v", false, "copy the servers' and generator's stderr to ours")
	fs.Func("scale-steps", "override the scale scenario's steps: comma-separated stream counts, e.g. 100000", func(v string) error {
		steps, err := parseSteps(v)
		o.scaleSteps = steps
		return err
	})
	fs.IntVar(&o.rounds, "rounds", 1, "run each scenario this many times per server, alternating which server goes first; figures are medians, ratios the median of each round's ratio")
	if err := fs.Parse(args); err != nil {
		return o, 2
	}
	if o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: -rounds must be at least 1")
		return o, 2
	}
	o.m = fullMode
	if *quick {
		o.m = quickMode
	}
	if *conns > 0 {
		o.m.conns = *conns
		o.m.fanoutLatencyConns = min(o.m.fanoutLatencyConns, *conns)
	}
	if *duration > 0 {
		o.m.duration = *duration
	}
	if *payload > 0 {
		o.m.payload = *payload
	}
	o.scenarios = fs.Args()
	if len(o.scenarios) == 0 {
		o.scenarios = loadgen.Scenarios
	}
	for _, s := range o.scenarios {
		if !slices.Contains(loadgen.Scenarios, s) {
			fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (want %s)\n", s, strings.Join(loadgen.Scenarios, ", "))
			return o, 2
		}
	}
	return o, 0
}

// systemsToRun lists the servers -systems names, building squall unless
// -squall-bin names a binary. broken says a build failed (the others still
// run); a non-zero code is the exit status of an unknown name.
func (o options) systemsToRun(ctx context.Context, work, self string) (syss []system, broken bool, code int) {
	for _, name := range strings.Split(o.systems, ",") {
		switch name {
		case "squall":
			bin := o.squallBin
			if bin == "" {
				start := time.Now()
				var err error
				if bin, err = buildSquall(ctx, work); err != nil {
					fmt.Fprintln(os.Stderr, "bench:", err)
					broken = true
					continue
				}
				fmt.Fprintf(os.Stderr, "bench: built squall in %v\n", time.Since(start).Round(time.Millisecond))
			}
			syss = append(syss, system{name: "squall", bin: bin})
		case "baseline":
			syss = append(syss, system{name: "baseline", bin: self, self: true})
		default:
			fmt.Fprintf(os.Stderr, "bench: unknown system %q\n", name)
			return nil, broken, 2
		}
	}
	return syss, broken, 0
}

// rounds runs scenario sc against every system n times, alternating which
// goes first, and combines each system's rounds.
func (r *runner) rounds(sc string, syss []system, n int) map[string]outcome {
	all := map[string][]outcome{}
	for round := range n {
		for _, sys := range roundOrder(syss, round) {
			if r.ctx.Err() != nil {
				break
			}
			which := ""
			if n > 1 {
				which = fmt.Sprintf(" (round %d of %d)", round+1, n)
			}
			fmt.Fprintf(os.Stderr, "bench: %s against %s%s...\n", sc, sys.name, which)
			t0 := time.Now()
			o := r.run(sc, sys, round == 0)
			switch {
			case o.skipped != "":
				fmt.Fprintf(os.Stderr, "bench: %s against %s skipped: %s\n", sc, sys.name, o.skipped)
			case o.err != nil:
				fmt.Fprintf(os.Stderr, "bench: %s against %s failed: %v\n", sc, sys.name, o.err)
			default:
				fmt.Fprintf(os.Stderr, "bench: %s against %s done in %v\n", sc, sys.name, time.Since(t0).Round(time.Millisecond))
			}
			all[sys.name] = append(all[sys.name], o)
		}
	}
	out := map[string]outcome{}
	for name, rs := range all {
		out[name] = combine(rs)
	}
	return out
}

// moduleRoot is the directory of the go.mod the go command sees from here.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the squall module: run the bench from the repository")
	}
	return filepath.Dir(gomod), nil
}

func buildSquall(ctx context.Context, work string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(work, "squall")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/squall")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/squall: %w\n%s", err, out)
	}
	return bin, nil
}

type runner struct {
	ctx        context.Context
	m          mode
	procs      *children
	self       string
	redisURL   string
	profileDir string
	results    map[string]map[string]outcome
	loadBefore string
	profiles   []string // "system: top entries"
	scaleSteps []int    // -scale-steps, nil for the mode's
}

// supportsRedis reports whether bin has a --redis flag, judged by its help
// text.
func supportsRedis(ctx context.Context, sys system) bool {
	if sys.self {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, sys.bin, "-h").CombinedOutput()
	return bytes.Contains(out, []byte("-redis"))
}

func redisReachable(rawURL string) error {
	host := strings.TrimPrefix(rawURL, "redis://")
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	c, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// run measures scenario sc against sys once; profile asks for the CPU and
// heap profiles when -profile is set.
func (r *runner) run(sc string, sys system, profile bool) outcome {
	if sc == "scale" {
		return r.runScale(sys)
	}
	nServers := 1
	var extra []string
	if sc == "cluster" {
		if !supportsRedis(r.ctx, sys) {
			return outcome{skipped: sys.name + " has no --redis flag yet"}
		}
		if err := redisReachable(r.redisURL); err != nil {
			return outcome{skipped: fmt.Sprintf("Redis at %s is not reachable: %v", r.redisURL, err)}
		}
		nServers = 2
		prefix := fmt.Sprintf("bench-%d-%d-%s", os.Getpid(), time.Now().UnixNano(), sys.name)
		extra = append(extra, "--redis", r.redisURL, "--redis-prefix", prefix)
		defer func() {
			if err := deletePrefix(r.redisURL, prefix); err != nil {
				fmt.Fprintf(os.Stderr, "bench: cleaning Redis keys %s*: %v\n", prefix, err)
			}
		}()
	}
	var servers []*child
	defer func() {
		for _, c := range servers {
			r.procs.stop(c, 5*time.Second)
		}
	}()
	var urls, pids []string
	for i := range nServers {
		name := fmt.Sprintf("%s-%s-%d", sys.name, sc, i)
		c, base, err := r.procs.startServer(r.ctx, name, sys.bin, extra, sys.self)
		if err != nil {
			return outcome{err: err}
		}
		servers = append(servers, c)
		urls = append(urls, base)
		pids = append(pids, strconv.Itoa(c.pid()))
	}
	args := append([]string{"loadgen"}, r.m.loadgenArgs(sc)...)
	args = append(args, "-servers", strings.Join(urls, ","), "-pids", strings.Join(pids, ","))
	var profPath, heapPath string
	if profile && r.profileDir != "" && sc == "fanout" {
		profPath, _ = filepath.Abs(filepath.Join(r.profileDir, sys.name+"-fanout.pprof"))
		heapPath, _ = filepath.Abs(filepath.Join(r.profileDir, sys.name+"-idle.heap"))
		args = append(args, "-cpuprofile", profPath, "-heapprofile", heapPath)
	}
	var stdout bytes.Buffer
	gen, err := r.procs.start(fmt.Sprintf("loadgen-%s-%s", sys.name, sc), r.self, args, &stdout)
	if err != nil {
		return outcome{err: err}
	}
	select {
	case <-gen.done:
	case <-time.After(r.m.timeout):
		r.procs.stop(gen, 5*time.Second)
		return outcome{err: fmt.Errorf("generator still running after %v: %s", r.m.timeout, gen.tail())}
	case <-r.ctx.Done():
		r.procs.stop(gen, 5*time.Second)
		return outcome{err: r.ctx.Err()}
	}
	r.procs.stop(gen, time.Second)
	for _, c := range servers {
		if c.exited() {
			return outcome{err: fmt.Errorf("%s exited during the run (%v): %s", c.name, c.waitErr, c.tail())}
		}
	}
	var res loadgen.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return outcome{err: fmt.Errorf("generator failed (%v): %s", gen.waitErr, gen.tail())}
	}
	if profPath != "" {
		r.profiles = append(r.profiles, topProfile(r.ctx, sys, profPath, "CPU during fanout flat out"))
		r.profiles = append(r.profiles, topProfile(r.ctx, sys, heapPath, "heap in use with every stream idle", "-sample_index=inuse_space"))
	}
	return outcome{res: &res}
}

// topProfile renders the top entries of a profile with go tool pprof.
func topProfile(ctx context.Context, sys system, path, what string, extra ...string) string {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=25"}, extra...)
	args = append(args, sys.bin, path)
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	head := fmt.Sprintf("%s, %s (%s):\n", sys.name, what, path)
	if err != nil {
		return head + fmt.Sprintf("go tool pprof failed: %v\n%s", err, out)
	}
	return head + string(out)
}

// deletePrefix removes the keys a cluster run left under its prefix, so
// that repeated runs do not fill a shared Redis.
func deletePrefix(rawURL, prefix string) error {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}
