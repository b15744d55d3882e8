package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Scenarios lists the scenario names Run accepts, in the order the bench
// runs them.
var Scenarios = []string{"fanout", "many-channels", "slow-consumer", "reconnect-storm", "cluster", "capacity", "scale"}

// Run executes one scenario against the servers in cfg and reports what it
// measured. Failures of the servers under test (nothing delivered, lost
// events, streams that never connect) go into Result.Errors; the error
// return is for a run that could not start at all.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	limit, err := RaiseFileLimit()
	if err != nil {
		return nil, err
	}
	// Each stream holds one descriptor; publishers, the runtime and the
	// memstats client need a few more.
	streams := cfg.Conns
	if cfg.Scenario == "slow-consumer" {
		streams = 2*cfg.Conns + cfg.Stalled
	}
	if cfg.Batch > MaxBatch {
		return nil, fmt.Errorf("loadgen: a batch has at most %d events, not %d", MaxBatch, cfg.Batch)
	}
	if need := uint64(streams + 4*cfg.Publishers + 64); need > limit {
		return nil, fmt.Errorf("loadgen: %d streams need about %d file descriptors, the limit is %d: use fewer streams per generator", streams, need, limit)
	}
	var channels []string
	switch cfg.Scenario {
	case "fanout", "reconnect-storm", "capacity":
		channels = []string{cfg.Scenario}
	case "slow-consumer":
		channels = []string{"slow-control", "slow-stalled"}
	case "many-channels":
		n := max(1, cfg.Conns/cfg.SubsPerChannel)
		for i := range n {
			channels = append(channels, fmt.Sprintf("mc-%d", i))
		}
	case "cluster":
		if len(cfg.Servers) < 2 {
			return nil, fmt.Errorf("loadgen: cluster needs two servers, got %d", len(cfg.Servers))
		}
		channels = []string{"cluster"}
	default:
		return nil, fmt.Errorf("loadgen: unknown scenario %q (want one of %s)", cfg.Scenario, strings.Join(Scenarios, ", "))
	}
	g, err := newGen(ctx, cfg, channels)
	if err != nil {
		return nil, err
	}
	if cfg.Scenario == "slow-consumer" {
		g.perChannel = true
		g.hist.Store(g.newHistSet())
	}
	r := &Result{Scenario: cfg.Scenario}
	stopped := false
	defer func() {
		if !stopped {
			g.stop()
		}
	}()
	switch cfg.Scenario {
	case "fanout":
		if len(cfg.Rates) == 0 {
			cfg.Rates = []float64{cfg.Rate}
			g.cfg.Rates = cfg.Rates
		}
		var rates []string
		for _, x := range cfg.Rates {
			rates = append(rates, fmt.Sprintf("%.0f", x))
		}
		r.Params = fmt.Sprintf("%d streams on one channel, %d B payload, flat out for %v; then %d streams at %s events/s for %v each",
			cfg.Conns, cfg.Payload, cfg.Duration, cfg.LatencyConns, strings.Join(rates, " and "), cfg.Duration)
		err = g.fanout(r)
	case "many-channels":
		r.Params = fmt.Sprintf("%d streams on %d channels (%d each), %d B payload, %.0f events/s then flat out, %v each",
			cfg.Conns, len(channels), cfg.SubsPerChannel, cfg.Payload, cfg.Rate, cfg.Duration)
		if cfg.Batch > 1 {
			r.Params += fmt.Sprintf("; then flat out in batches of %d events per POST /publish/batch for %v", cfg.Batch, cfg.Duration)
		}
		err = g.manyChannels(r)
	case "slow-consumer":
		r.Params = fmt.Sprintf("two channels with %d reading streams each, %d B payload, %.0f events/s on each: a warm-up, %v as they are, then %v with %d stalled streams (SO_RCVBUF %d, never read) added to the second channel; the first is the control, measured at the same time",
			cfg.Conns, cfg.Payload, cfg.Rate, cfg.Duration, cfg.StallDuration, cfg.Stalled, cfg.StalledRcvBuf)
		err = g.slowConsumer(r)
	case "reconnect-storm":
		r.Params = fmt.Sprintf("%d streams on one channel, %d B payload, %.0f events/s for %v; all streams drop after %v and resume with Last-Event-ID",
			cfg.Conns, cfg.Payload, cfg.Rate, 3*cfg.Duration, cfg.Duration)
		err = g.reconnectStorm(r)
	case "capacity":
		r.Params = fmt.Sprintf("streams on one channel added in %d steps up to %d, %d B payload; at each step, idle memory and one broadcast",
			capacitySteps, cfg.Conns, cfg.Payload)
		err = g.capacity(r)
	case "cluster":
		r.Params = fmt.Sprintf("%d streams on one channel split over %d hubs, publishes to the first, %d B payload, %.0f events/s then flat out, %v each",
			cfg.Conns, len(cfg.Servers), cfg.Payload, cfg.Rate, cfg.Duration)
		err = g.cluster(r)
	}
	if err != nil {
		r.errorf("%v", err)
	}
	g.finalDrain(g.cfg.FinalDrain)
	g.stop()
	stopped = true
	g.check(r)
	return r, nil
}

// check adds the correctness figures every scenario shares and turns
// failures into errors.
func (g *Gen) check(r *Result) {
	t := g.totals()
	r.add("lost events", "", float64(t.lost), Lower)
	r.add("duplicate events", "", float64(t.dups), Lower)
	r.add("unplanned disconnects", "", float64(g.disconnects.Load()), Lower)
	r.add("reset events", "", float64(t.resets), Lower)
	if g.delivered.Load() == 0 {
		r.errorf("no measured event was delivered")
	}
	if t.lostSilent > 0 {
		r.errorf("%d events lost without a reset event", t.lostSilent)
	}
	if t.lost > t.lostSilent {
		r.notef("%d events lost on streams that were told so with a reset event", t.lost-t.lostSilent)
	}
	if t.dups > 0 {
		r.errorf("%d duplicate events", t.dups)
	}
	if n := g.badPayload.Load(); n > 0 {
		r.errorf("%d events with a payload the generator did not write", n)
	}
	if n := g.pubErrors.Load(); n > 0 {
		g.errMu.Lock()
		r.errorf("%d publishes failed, e.g. %s", n, strings.Join(g.pubErrs, "; "))
		g.errMu.Unlock()
	}
	if n := g.disconnects.Load(); n > 0 {
		r.notef("%d unplanned disconnects (streams resumed with Last-Event-ID); last error: %v", n, g.lastConnErr())
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (g *Gen) memMetrics(r *Result, m0, m1 serverMem, n int) {
	per := func(a, b int64) float64 { return float64(b-a) / float64(n) }
	r.add("RSS per idle stream", "KB", per(m0.RSS, m1.RSS)/1024, Lower)
	r.add("heap+stack per idle stream", "KB", per(m0.HeapStack, m1.HeapStack)/1024, Lower)
	r.add("  of which stack", "KB", per(m0.Stack, m1.Stack)/1024, Lower)
	r.add("goroutines per stream", "", per(m0.Goroutines, m1.Goroutines), Lower)
}

// idleMem opens n streams with open, syncs them, lets them rest and adds
// the per-stream memory figures.
func (g *Gen) idleMem(r *Result, m0 serverMem, cs []*subConn) error {
	time.Sleep(g.cfg.Settle)
	m1, err := g.mem()
	if err != nil {
		return err
	}
	g.memMetrics(r, m0, m1, len(cs))
	return nil
}

func (g *Gen) rateMetrics(r *Result, rate float64, label string, p *phase) {
	r.add("p50 latency "+label, "ms", ms(p.hist.Quantile(0.50)), Lower)
	r.add("p99 latency "+label, "ms", ms(p.hist.Quantile(0.99)), Lower)
	r.add("p99.9 latency "+label, "ms", ms(p.hist.Quantile(0.999)), Lower)
	reached := float64(p.published) / p.pubTime.Seconds()
	r.add("publish rate reached "+label, "events/s", reached, Higher)
	if p.delivered > 0 {
		// At a fixed rate the work is the same for every server, so this
		// is what the rate costs, the cores left to everything else.
		r.add("server CPU per delivery "+label, "µs", float64(p.serverCPU.Microseconds())/float64(p.delivered), Lower)
	}
	if reached < 0.95*rate {
		r.notef("%s: the publishers reached only %.0f of %.0f events/s: the server (sharing the cores with the generator) was saturated, so these latencies are those of a saturated server, measured from each publish actually sent", label, reached, rate)
	}
	if !p.drained {
		r.notef("%s: %d deliveries still missing after the drain timeout", label, p.missing)
	}
}

func (g *Gen) flatMetrics(r *Result, label string, p *phase) {
	r.add("deliveries/s "+label, "", float64(p.delivered)/p.elapsed.Seconds(), Higher)
	r.add("publishes/s "+label, "", float64(p.published)/p.elapsed.Seconds(), Higher)
	if p.delivered > 0 {
		r.add("server CPU per delivery "+label, "µs", float64(p.serverCPU.Microseconds())/float64(p.delivered), Lower)
	} else {
		r.missing("server CPU per delivery "+label, "µs", Lower)
	}
	if p.reads > 0 {
		// Each server flush usually arrives as one read, so this is close
		// to the frames the server coalesced per write.
		r.add("events per read "+label, "", float64(p.delivered)/float64(p.reads), Info)
	} else {
		r.missing("events per read "+label, "", Info)
	}
	r.add("p99 latency "+label, "ms", ms(p.hist.Quantile(0.99)), Lower)
	r.add("generator CPU "+label, "% of a core", 100*p.genCPU.Seconds()/p.elapsed.Seconds(), Info)
	if !p.drained {
		r.notef("%s: %d deliveries still missing after the drain timeout", label, p.missing)
	}
}

func zero(int) int { return 0 }

func (g *Gen) fanout(r *Result) error {
	cfg := g.cfg
	m0, err := g.mem()
	if err != nil {
		return err
	}
	cs, err := g.open(cfg.Conns, zero, zero, false)
	if err != nil {
		return err
	}
	if err := g.sync(cs); err != nil {
		return err
	}
	if err := g.idleMem(r, m0, cs); err != nil {
		return err
	}
	if cfg.HeapProfile != "" {
		if err := g.fetchPprof("heap?gc=1", cfg.HeapProfile, 30*time.Second); err != nil {
			r.notef("heap profile: %v", err)
		}
	}
	prof := g.startProfile(cfg.Duration)
	p := g.flat(cfg.Duration, []int{0})
	if err := prof(); err != nil {
		r.notef("CPU profile: %v", err)
	}
	g.flatMetrics(r, fmt.Sprintf("flat out (%d streams)", cfg.Conns), p)
	if cfg.LatencyConns < len(cs) {
		g.uncount(cs[cfg.LatencyConns:])
		g.settleGoroutines(10 * time.Second)
	}
	for _, rate := range cfg.Rates {
		q := g.fixedRate(rate, cfg.Duration, []int{0}, nil)
		g.rateMetrics(r, rate, fmt.Sprintf("@ %.0f ev/s × %d streams", rate, cfg.LatencyConns), q)
	}
	return nil
}

func (g *Gen) manyChannels(r *Result) error {
	cfg := g.cfg
	nch := len(g.chNames)
	m0, err := g.mem()
	if err != nil {
		return err
	}
	cs, err := g.open(cfg.Conns, func(i int) int { return i % nch }, zero, false)
	if err != nil {
		return err
	}
	if err := g.sync(cs); err != nil {
		return err
	}
	if err := g.idleMem(r, m0, cs); err != nil {
		return err
	}
	chans := make([]int, nch)
	for i := range chans {
		chans[i] = i
	}
	q := g.fixedRate(cfg.Rate, cfg.Duration, chans, nil)
	g.rateMetrics(r, cfg.Rate, fmt.Sprintf("@ %.0f ev/s over %d channels", cfg.Rate, nch), q)
	prof := g.startProfile(cfg.Duration)
	p := g.flat(cfg.Duration, chans)
	if err := prof(); err != nil {
		r.notef("CPU profile: %v", err)
	}
	g.flatMetrics(r, "flat out", p)
	if cfg.Batch > 1 {
		// The same work in fewer requests: what the request overhead,
		// most of a single publish's cost, was worth.
		prof := g.startProfileTo(cfg.BatchCPUProfile, cfg.Duration)
		p := g.flatBatch(cfg.Duration, chans, cfg.Batch)
		if err := prof(); err != nil {
			r.notef("CPU profile: %v", err)
		}
		g.flatMetrics(r, fmt.Sprintf("flat out, batches of %d", cfg.Batch), p)
	}
	return nil
}

// slowConsumer measures what stalled readers cost the others. Two channels
// carry the same load; stalled streams join only the second, and the first
// is the control, measured in the same seconds, so that the noise of a
// shared machine falls on both sides alike.
func (g *Gen) slowConsumer(r *Result) error {
	cfg := g.cfg
	cs, err := g.open(2*cfg.Conns, func(i int) int { return i % 2 }, zero, false)
	if err != nil {
		return err
	}
	if err := g.sync(cs); err != nil {
		return err
	}
	both := []int{0, 1}
	// Warm up first, unreported: the first phase after subscribing runs
	// with cold buffers and stacks.
	g.fixedRate(2*cfg.Rate, min(cfg.Duration, 2*time.Second), both, nil)
	a := g.fixedRate(2*cfg.Rate, cfg.Duration, both, nil)
	m0, err := g.mem()
	if err != nil {
		return err
	}
	stalled, err := g.open(cfg.Stalled, func(int) int { return 1 }, zero, true)
	if err != nil {
		return err
	}
	if err := g.sync(stalled); err != nil {
		return err
	}
	b := g.fixedRate(2*cfg.Rate, cfg.StallDuration, both, nil)
	m1, err := g.mem()
	if err != nil {
		return err
	}
	q := func(h *Hist, x float64) float64 { return ms(h.Quantile(x)) }
	for _, row := range []struct {
		label string
		h     *Hist
	}{
		{"before, control channel", a.per[0]},
		{"before, second channel", a.per[1]},
		{"control channel", b.per[0]},
		{fmt.Sprintf("channel with %d stalled", cfg.Stalled), b.per[1]},
	} {
		r.add("p50 latency "+row.label, "ms", q(row.h, 0.5), Lower)
		r.add("p99 latency "+row.label, "ms", q(row.h, 0.99), Lower)
		r.add("p99.9 latency "+row.label, "ms", q(row.h, 0.999), Lower)
	}
	ratio := func(name string, num, den *Hist) {
		if d := den.Quantile(0.99); d > 0 {
			r.add(name, "×", float64(num.Quantile(0.99))/float64(d), Lower)
		} else {
			r.missing(name, "×", Lower)
		}
	}
	ratio("p99 stalled channel / control, same time", b.per[1], b.per[0])
	ratio("p99 second / control channel, before", a.per[1], a.per[0])
	ratio("p99 stalled channel / itself before", b.per[1], a.per[1])
	for _, p := range []struct {
		label string
		p     *phase
	}{{"before", a}, {"with stalled", b}} {
		reached := float64(p.p.published) / p.p.pubTime.Seconds()
		r.add("publish rate reached "+p.label, "events/s", reached, Higher)
		if reached < 0.95*2*cfg.Rate {
			r.notef("%s: the publishers reached only %.0f of %.0f events/s: the server was saturated", p.label, reached, 2*cfg.Rate)
		}
		if !p.p.drained {
			r.notef("%s: %d deliveries still missing after the drain timeout", p.label, p.p.missing)
		}
	}
	r.add("server RSS growth while stalled", "MB", float64(m1.RSS-m0.RSS)/(1<<20), Lower)
	// Release the stalled streams and read them out: a stream the server
	// had closed ends in EOF, one it still holds runs into the deadline.
	for _, c := range stalled {
		close(c.unstall)
	}
	cut := 0
	timeout := time.After(cfg.CutWait + 5*time.Second)
	for _, c := range stalled {
		select {
		case <-c.done:
			if c.cut {
				cut++
			}
		case <-timeout:
		}
	}
	r.add("stalled streams closed by the server", "", float64(cut), Info)
	return nil
}

func (g *Gen) reconnectStorm(r *Result) error {
	cfg := g.cfg
	cs, err := g.open(cfg.Conns, zero, zero, false)
	if err != nil {
		return err
	}
	if err := g.sync(cs); err != nil {
		return err
	}
	var storm time.Duration
	stormOK := false
	during := func() {
		t := time.NewTimer(cfg.Duration)
		select {
		case <-g.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		at := time.Now()
		for _, c := range cs {
			c.dropNow(at.UnixNano())
		}
		deadline := at.Add(cfg.SyncTimeout)
		for g.reconnected.Load() < int64(len(cs)) && time.Now().Before(deadline) && g.ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		storm = time.Since(at)
		stormOK = g.reconnected.Load() >= int64(len(cs))
	}
	p := g.fixedRate(cfg.Rate, 3*cfg.Duration, []int{0}, during)
	if stormOK {
		r.add("time until all streams resumed", "ms", ms(storm), Lower)
	} else {
		r.missing("time until all streams resumed", "ms", Lower)
		r.errorf("%d of %d streams resumed within %v", g.reconnected.Load(), len(cs), cfg.SyncTimeout)
	}
	r.add("p50 time to resume one stream", "ms", ms(g.reconnectHist.Quantile(0.5)), Lower)
	r.add("p99 time to resume one stream", "ms", ms(g.reconnectHist.Quantile(0.99)), Lower)
	g.rateMetrics(r, cfg.Rate, "across the storm", p)
	return nil
}

func (g *Gen) cluster(r *Result) error {
	cfg := g.cfg
	nsrv := len(g.servers)
	m0, err := g.mem()
	if err != nil {
		return err
	}
	cs, err := g.open(cfg.Conns, zero, func(i int) int { return i % nsrv }, false)
	if err != nil {
		return err
	}
	if err := g.sync(cs); err != nil {
		return err
	}
	if err := g.idleMem(r, m0, cs); err != nil {
		return err
	}
	q := g.fixedRate(cfg.Rate, cfg.Duration, []int{0}, nil)
	g.rateMetrics(r, cfg.Rate, fmt.Sprintf("@ %.0f ev/s × %d streams", cfg.Rate, cfg.Conns), q)
	p := g.flat(cfg.Duration, []int{0})
	g.flatMetrics(r, "flat out", p)
	return nil
}

// startProfile, when a CPU profile file is configured, starts fetching
// one of the first server for d and returns a func that waits for it.
func (g *Gen) startProfile(d time.Duration) func() error {
	return g.startProfileTo(g.cfg.CPUProfile, d)
}

// startProfileTo is startProfile saving to path; "" saves nothing.
func (g *Gen) startProfileTo(path string, d time.Duration) func() error {
	if path == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		secs := max(1, int(d.Seconds()))
		done <- g.fetchPprof(fmt.Sprintf("profile?seconds=%d", secs), path, time.Duration(secs+30)*time.Second)
	}()
	return func() error { return <-done }
}

// fetchPprof saves GET /debug/pprof/WHAT of the first server to path.
func (g *Gen) fetchPprof(what, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(g.ctx, timeout)
	defer cancel()
	u := g.servers[0].base + "/debug/pprof/" + what
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
