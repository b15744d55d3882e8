package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/squall-sse/squall/bench/internal/loadgen"
)

// The scale scenario measures cluster mode spread over processes. The
// baseline has no per-channel interest, so its column holds the floor
// (floorMain) for the broadcasts, and nothing for ingress:
//
//  1. broadcast: several hub processes on one Redis, streams spread over
//     them by several generator processes (each below the 20,000-descriptor
//     cap), stepping up to the largest count; at each step a few broadcasts
//     to all streams, timed from the publish to each receipt (p50, p99, and
//     the last receipt);
//  2. ingress: 4 hubs, channels split between them (each hub's streams are
//     on a quarter of the channels), events published to every channel; the
//     bytes Redis sends each hub's subscription (CLIENT LIST tot-net-out),
//     with per-channel interest and with the pattern subscription.

// scaleMode sizes the scenario.
type scaleMode struct {
	hubs       int
	steps      []int // concurrent streams
	perGen     int   // streams per generator process
	broadcasts int   // per step
	channels   int   // ingress phase
	events     int   // ingress phase
}

var (
	scaleQuick = scaleMode{hubs: 2, steps: []int{200, 1000}, perGen: 600, broadcasts: 2, channels: 40, events: 400}
	scaleFull  = scaleMode{hubs: 6, steps: []int{10000, 50000, 100000}, perGen: 18000, broadcasts: 3, channels: 400, events: 20000}
)

const scaleChannel = "scale-broadcast"

func (r *runner) runScale(sys system) outcome {
	sm := scaleFull
	if r.m.name == "quick" {
		sm = scaleQuick
	}
	if r.scaleSteps != nil {
		sm.steps = r.scaleSteps
	}
	if sys.self {
		// The baseline has no per-channel interest, so its column holds the
		// floor instead, for the broadcasts only.
		res := &loadgen.Result{Scenario: "scale", Notes: []string{fmt.Sprintf(
			"this column is the floor, not the baseline server: %d `bench floor` processes in place of the hubs, each broadcast fired at all of them at once and stamped by each one's clock (no Redis hop)", sm.hubs)}}
		if err := r.scaleBroadcast(func() (*scaleServers, error) { return r.scaleFloors(sm.hubs) }, sm, res); err != nil {
			return outcome{err: err}
		}
		return outcome{res: res}
	}
	if err := redisReachable(r.redisURL); err != nil {
		return outcome{skipped: fmt.Sprintf("Redis at %s is not reachable: %v", r.redisURL, err)}
	}
	res := &loadgen.Result{Scenario: "scale", Params: fmt.Sprintf(
		"broadcast: %d hubs on one Redis, streams from generators of at most %d, steps %v; ingress: 4 hubs, %d channels split between them, %d events of %d B",
		sm.hubs, sm.perGen, sm.steps, sm.channels, sm.events, r.m.payload)}
	err := r.scaleBroadcast(func() (*scaleServers, error) { return r.scaleSquall(sys, sm.hubs) }, sm, res)
	if err != nil {
		return outcome{err: err}
	}
	var read [2]float64
	for i, interest := range []string{"channels", "all"} {
		if read[i], err = r.scaleIngress(sys, sm, interest, res); err != nil {
			return outcome{err: err}
		}
	}
	if read[1] > 0 {
		res.Metrics = append(res.Metrics, loadgen.Metric{Name: "bytes read per hub, interest / pattern",
			Unit: "%", Value: 100 * read[0] / read[1], Better: loadgen.Lower})
	}
	return outcome{res: res}
}

// scaleHubs starts n squall processes on Redis with one prefix.
func (r *runner) scaleHubs(sys system, n int, interest string) ([]*child, []string, string, error) {
	prefix := fmt.Sprintf("bench-scale-%d-%d", os.Getpid(), time.Now().UnixNano())
	// A heartbeat far longer than the run keeps heartbeat bursts off the
	// timed broadcasts, while the hub still sizes its TCP keepalive as it
	// does with heartbeats on: healthy streams are never probed.
	extra := []string{"--redis", r.redisURL, "--redis-prefix", prefix, "--redis-interest", interest,
		"--max-streams", "19500", "--max-conns-per-ip", "0", "--read-header-timeout", "1m", "--heartbeat", "30m", "--flush-gap", "0", "--demo=false"}
	var cs []*child
	var urls []string
	for i := range n {
		c, base, err := r.procs.startServer(r.ctx, fmt.Sprintf("squall-scale-%s-%d", interest, i), sys.bin, extra, false)
		if err != nil {
			r.stopScale(cs, prefix)
			return nil, nil, "", err
		}
		cs, urls = append(cs, c), append(urls, base)
	}
	return cs, urls, prefix, nil
}

// scaleServers are the processes a broadcast goes through and how one is
// sent.
type scaleServers struct {
	procs []*child
	urls  []string // where the generators open streams
	fire  func(seq int) error
	stop  func()
}

// scaleSquall is n hubs on Redis with per-channel interest; a broadcast is
// one POST /publish to one of them, stamped before it is sent.
func (r *runner) scaleSquall(sys system, n int) (*scaleServers, error) {
	hubs, urls, prefix, err := r.scaleHubs(sys, n, "channels")
	if err != nil {
		return nil, err
	}
	fire := func(seq int) error {
		body := fmt.Sprintf(`{"channel":%q,"data":"%d %d"}`, scaleChannel, seq, time.Now().UnixNano())
		resp, err := http.Post(urls[seq%len(urls)]+"/publish", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("broadcast publish answered %d", resp.StatusCode)
		}
		return nil
	}
	return &scaleServers{procs: hubs, urls: urls, fire: fire, stop: func() { r.stopScale(hubs, prefix) }}, nil
}

// scaleFloors is n floor processes (floorMain); a broadcast is sent to all
// of them at once, and each stamps it when it starts writing.
func (r *runner) scaleFloors(n int) (*scaleServers, error) {
	ss := &scaleServers{}
	ss.stop = func() {
		for _, c := range ss.procs {
			r.procs.stop(c, 5*time.Second)
		}
	}
	var controls []string
	for i := range n {
		addr, err := freeAddr()
		control := ""
		if err == nil {
			control, err = freeAddr()
		}
		if err != nil {
			ss.stop()
			return nil, err
		}
		c, err := r.procs.start(fmt.Sprintf("floor-%d", i), r.self, []string{"floor", "-addr", addr, "-control", control}, nil)
		if err != nil {
			ss.stop()
			return nil, err
		}
		ss.procs = append(ss.procs, c)
		ss.urls = append(ss.urls, "http://"+addr)
		controls = append(controls, "http://"+control)
		if err := r.procs.waitReady(r.ctx, c, "http://"+control); err != nil {
			ss.stop()
			return nil, err
		}
	}
	ss.fire = func(seq int) error {
		var g errgroup.Group
		for _, base := range controls {
			g.Go(func() error {
				resp, err := http.Get(fmt.Sprintf("%s/broadcast?seq=%d", base, seq))
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("floor broadcast answered %d", resp.StatusCode)
				}
				return nil
			})
		}
		return g.Wait()
	}
	return ss, nil
}

func (r *runner) stopScale(cs []*child, prefix string) {
	for _, c := range cs {
		r.procs.stop(c, 5*time.Second)
	}
	if err := deletePrefix(r.redisURL, prefix); err != nil {
		fmt.Fprintf(os.Stderr, "bench: cleaning Redis keys %s*: %v\n", prefix, err)
	}
}

// scaleGen is one generator process and the reports it sends.
type scaleGen struct {
	c     *child
	lines chan string
}

func (r *runner) scaleBroadcast(start func() (*scaleServers, error), sm scaleMode, res *loadgen.Result) error {
	ss, err := start()
	if err != nil {
		return err
	}
	defer ss.stop()
	hubs, urls := ss.procs, ss.urls
	var gens []*scaleGen
	defer func() {
		for _, g := range gens {
			r.procs.stop(g.c, 5*time.Second)
		}
	}()
	open, seq := 0, 0
	resets := map[*scaleGen]int64{}
	defer func() {
		var n int64
		for _, v := range resets {
			n += v
		}
		if n > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%d streams were cut and resumed with Last-Event-ID during the broadcasts (their receipts include the reconnection)", n))
		}
	}()
	// A step that fails (a generator that cannot open its streams, a
	// broadcast that does not reach every stream in time) ends the
	// stepping: the figures of the steps before it stand.
steps:
	for _, target := range sm.steps {
		fresh := len(gens)
		for open < target {
			n := min(sm.perGen, target-open)
			g, err := r.startScaleGen(len(gens), urls, n, open)
			if err != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("step %d: %v", target, err))
				break steps
			}
			gens = append(gens, g)
			open += n
		}
		for _, g := range gens[fresh:] {
			if err := g.waitFor("ready", 3*time.Minute); err != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("step %d: generator %s: %v", target, g.c.name, err))
				break steps
			}
		}
		var p50s, p99s, lasts, hubCPU, genCPU []float64
		for range sm.broadcasts {
			seq++
			hist := map[int]int{}
			hub0, gen0 := cpuOf(hubs), cpuOf(genChildren(gens))
			if err := ss.fire(seq); err != nil {
				return err
			}
			for _, g := range gens {
				line, err := g.next(2 * time.Minute)
				if err != nil {
					res.Errors = append(res.Errors, fmt.Sprintf("step %d: generator %s, broadcast %d: %v", target, g.c.name, seq, err))
					break steps
				}
				var rep struct {
					Hist   map[int]int
					Resets int64
				}
				if err := json.Unmarshal([]byte(line), &rep); err != nil {
					return fmt.Errorf("generator %s: %q: %w", g.c.name, line, err)
				}
				for ms, n := range rep.Hist {
					hist[ms] += n
				}
				resets[g] = rep.Resets
			}
			p50, p99, last, n := quantiles(hist)
			if n != open {
				res.Errors = append(res.Errors, fmt.Sprintf("broadcast %d reached %d of %d streams", seq, n, open))
			}
			p50s, p99s, lasts = append(p50s, p50), append(p99s, p99), append(lasts, last)
			hubCPU = append(hubCPU, float64((cpuOf(hubs)-hub0).Microseconds())/float64(open))
			genCPU = append(genCPU, float64((cpuOf(genChildren(gens))-gen0).Microseconds())/float64(open))
		}
		name := fmt.Sprintf("broadcast to %d streams", target)
		res.Metrics = append(res.Metrics,
			loadgen.Metric{Name: name + ", p50", Unit: "ms", Value: median(p50s), Better: loadgen.Lower},
			loadgen.Metric{Name: name + ", p99", Unit: "ms", Value: median(p99s), Better: loadgen.Lower},
			loadgen.Metric{Name: name + ", last receipt", Unit: "ms", Value: median(lasts), Better: loadgen.Lower},
			loadgen.Metric{Name: name + ", hub CPU per delivery", Unit: "µs", Value: median(hubCPU), Better: loadgen.Lower},
			loadgen.Metric{Name: name + ", generator CPU per delivery", Unit: "µs", Value: median(genCPU), Better: loadgen.Lower})
	}
	return nil
}

// quantiles of a histogram in ms: p50, p99, the largest, the count.
func quantiles(h map[int]int) (p50, p99, last float64, n int) {
	keys := make([]int, 0, len(h))
	for k, c := range h {
		keys = append(keys, k)
		n += c
	}
	slices.Sort(keys)
	seen := 0
	p50, p99 = -1, -1
	for _, k := range keys {
		seen += h[k]
		if p50 < 0 && seen*2 >= n {
			p50 = float64(k)
		}
		if p99 < 0 && seen*100 >= n*99 {
			p99 = float64(k)
		}
		last = float64(k)
	}
	return p50, p99, last, n
}

func (r *runner) startScaleGen(i int, urls []string, n, offset int) (*scaleGen, error) {
	args := []string{"scale-gen", "-servers", strings.Join(urls, ","), "-conns", strconv.Itoa(n),
		"-offset", strconv.Itoa(offset), "-channel", scaleChannel}
	pr, pw := io.Pipe()
	c, err := r.procs.start(fmt.Sprintf("scale-gen-%d", i), r.self, args, pw)
	if err != nil {
		return nil, err
	}
	g := &scaleGen{c: c, lines: make(chan string, 16)}
	go func() {
		defer close(g.lines)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			g.lines <- sc.Text()
		}
	}()
	go func() {
		<-c.done
		_ = pw.Close()
	}()
	return g, nil
}

func (g *scaleGen) next(limit time.Duration) (string, error) {
	select {
	case l, ok := <-g.lines:
		if !ok {
			return "", fmt.Errorf("exited: %s", g.c.tail())
		}
		return l, nil
	case <-time.After(limit):
		return "", fmt.Errorf("nothing after %v: %s", limit, g.c.tail())
	}
}

func (g *scaleGen) waitFor(word string, limit time.Duration) error {
	l, err := g.next(limit)
	if err != nil {
		return err
	}
	if l != word {
		return fmt.Errorf("said %q, want %q", l, word)
	}
	return nil
}

// scaleIngress measures what each of 4 hubs reads while events go to
// channels split between them: each hub's streams are on a quarter of the
// channels. The events are published through a fifth hub with no stream,
// so that what the four read (their /proc/PID/io rchar) is what Redis
// sends them.
func (r *runner) scaleIngress(sys system, sm scaleMode, interest string, res *loadgen.Result) (float64, error) {
	const hubs = 4
	cs, urls, prefix, err := r.scaleHubs(sys, hubs+1, interest)
	if err != nil {
		return 0, err
	}
	defer r.stopScale(cs, prefix)
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	// One stream per channel, on the hub the channel is given to.
	for ch := range sm.channels {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/events?channel=in-%d", urls[ch%hubs], ch), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		go func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close() }()
	}
	if interest == "channels" {
		opt, err := redis.ParseURL(r.redisURL)
		if err != nil {
			return 0, err
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		for deadline := time.Now().Add(time.Minute); ; {
			subs, err := rdb.PubSubNumSub(ctx, prefixedChannels(prefix, sm.channels)...).Result()
			if err != nil {
				return 0, err
			}
			got := 0
			for _, v := range subs {
				got += int(v)
			}
			if got >= sm.channels {
				break
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("ingress: %d of %d subscriptions after a minute", got, sm.channels)
			}
			time.Sleep(50 * time.Millisecond) // polling Redis
		}
	}
	before := make([]int64, hubs)
	for i := range hubs {
		if before[i], err = readChars(cs[i].pid()); err != nil {
			return 0, err
		}
	}
	data := strings.Repeat("x", r.m.payload)
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range sm.events {
		body := fmt.Sprintf(`{"channel":"in-%d","data":%q}`, i%sm.channels, data)
		resp, err := client.Post(urls[hubs]+"/publish", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
	}
	time.Sleep(time.Second) // let the hubs read what Redis sent
	var per []float64
	for i := range hubs {
		after, err := readChars(cs[i].pid())
		if err != nil {
			return 0, err
		}
		per = append(per, float64(after-before[i]))
	}
	slices.Sort(per)
	label := "per-channel interest"
	if interest == "all" {
		label = "pattern (every event)"
	}
	med := per[len(per)/2]
	res.Metrics = append(res.Metrics,
		loadgen.Metric{Name: "bytes read per hub, " + label + ", median of 4", Unit: "KB", Value: med / 1e3, Better: loadgen.Lower},
		loadgen.Metric{Name: "bytes read per hub, " + label + ", per event published", Unit: "B", Value: med / float64(sm.events), Better: loadgen.Lower})
	return med, nil
}

// readChars is what a process has read through system calls (rchar).
func genChildren(gs []*scaleGen) []*child {
	cs := make([]*child, len(gs))
	for i, g := range gs {
		cs[i] = g.c
	}
	return cs
}

// cpuOf is the CPU time (user and system) the processes have used so far,
// from /proc/PID/stat in clock ticks (100 per second here): over a
// broadcast to tens of thousands of streams, a few per cent coarse.
func cpuOf(cs []*child) time.Duration {
	var ticks int64
	for _, c := range cs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.pid()))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses and may
		// hold spaces: utime and stime are the 12th and 13th.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + s
		}
	}
	return time.Duration(ticks) * time.Second / 100
}

func readChars(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no rchar in /proc/%d/io", pid)
}

func prefixedChannels(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s:in-%d", prefix, i)
	}
	return out
}

// parseSteps reads -scale-steps: ascending positive stream counts.
func parseSteps(v string) ([]int, error) {
	var steps []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || (len(steps) > 0 && n <= steps[len(steps)-1]) {
			return nil, fmt.Errorf("want ascending positive counts, got %q", v)
		}
		steps = append(steps, n)
	}
	return steps, nil
}
