package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/squall-sse/squall/bench/internal/loadgen"
)

type report struct {
	text     string
	markdown string
	failed   bool
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAvg is the 1-minute load average: other work on the machine skews
// the figures, so the report records it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

func kernel() string {
	out, err := exec.Command("uname", "-sr").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func fmtValue(m loadgen.Metric) string {
	if m.Missing {
		return "n/a"
	}
	v := m.Value
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func name(m loadgen.Metric) string {
	if m.Unit == "" {
		return m.Name
	}
	return m.Name + " (" + m.Unit + ")"
}

// ratio is squall over baseline; "-" when either is missing or the
// baseline is zero.
func ratio(a, b loadgen.Metric) string {
	if a.Missing || b.Missing || b.Value == 0 {
		if !a.Missing && !b.Missing && a.Value == 0 && b.Value == 0 {
			return "="
		}
		return "-"
	}
	return fmt.Sprintf("%.2f", a.Value/b.Value)
}

func (r *runner) report(scenarios []string, syss []system, took time.Duration, args []string) report {
	var b bytes.Buffer
	var rep report
	hasSquall, hasBase := false, false
	for _, s := range syss {
		hasSquall = hasSquall || s.name == "squall"
		hasBase = hasBase || s.name == "baseline"
	}
	r.writeHeader(&b, took, args)
	var failures []string
	for _, sc := range scenarios {
		failures = append(failures, r.writeScenario(&b, sc, syss)...)
	}
	if hasSquall && hasBase {
		b.WriteString(r.targets())
		b.WriteString(r.targets16())
	}
	if len(r.profiles) > 0 {
		b.WriteString("\n## Profiles (fanout)\n\n")
		for _, p := range r.profiles {
			b.WriteString("```\n" + p + "```\n")
		}
	}
	if len(failures) > 0 {
		rep.failed = true
		b.WriteString("\n## Failures\n\n")
		for _, f := range failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		b.WriteString("\nRESULT: FAIL\n")
	} else {
		b.WriteString("\nRESULT: OK (correctness checks passed; figures are not pass/fail)\n")
	}
	rep.text = b.String()
	rep.markdown = rep.text
	return rep
}

// writeHeader writes what the figures were measured on and with.
func (r *runner) writeHeader(b *bytes.Buffer, took time.Duration, args []string) {
	fmt.Fprintf(b, "# Squall bench: %s mode\n\n", r.m.name)
	fmt.Fprintf(b, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "- CPU: %s, %d cores (generator and servers share them)\n", cpuModel(), runtime.NumCPU())
	fmt.Fprintf(b, "- Go: %s, %s\n", runtime.Version(), kernel())
	fmt.Fprintf(b, "- N: %d streams, %d B payload, %v per phase\n", r.m.conns, r.m.payload, r.m.duration)
	fmt.Fprintf(b, "- command: `go run ./bench %s` (took %v)\n", strings.Join(args, " "), took.Round(time.Second))
	fmt.Fprintf(b, "- load average (1 min) before the run: %s, after: %s\n", r.loadBefore, loadAvg())
	b.WriteString("- ratio = squall / baseline; the last column says which way is better\n")
}

// writeScenario writes one scenario's section: its parameters, each
// server's failures and notes, and the table of metrics. It returns the
// failures.
func (r *runner) writeScenario(b *bytes.Buffer, sc string, syss []system) (failures []string) {
	res := r.results[sc]
	sq, ba := res["squall"], res["baseline"]
	params := ""
	for _, o := range []outcome{sq, ba} {
		if o.res != nil {
			params = o.res.Params
			break
		}
	}
	fmt.Fprintf(b, "\n## %s\n\n", sc)
	if params != "" {
		fmt.Fprintf(b, "%s.\n\n", params)
	}
	for _, sys := range syss {
		o := res[sys.name]
		switch {
		case o.skipped != "":
			fmt.Fprintf(b, "- %s: skipped: %s\n", sys.name, o.skipped)
		case o.err != nil:
			fmt.Fprintf(b, "- %s: FAILED: %v\n", sys.name, o.err)
			failures = append(failures, fmt.Sprintf("%s/%s: %v", sc, sys.name, o.err))
		case o.res != nil:
			for _, e := range o.res.Errors {
				fmt.Fprintf(b, "- %s: FAILED: %s\n", sys.name, e)
				failures = append(failures, fmt.Sprintf("%s/%s: %s", sc, sys.name, e))
			}
			for _, n := range o.res.Notes {
				fmt.Fprintf(b, "- %s: %s\n", sys.name, n)
			}
		}
	}
	writeMetrics(b, sq, ba)
	return failures
}

// writeMetrics writes the table of squall's and the baseline's figures and
// their ratio, with the ratio of each round when both ran several.
func writeMetrics(b *bytes.Buffer, sq, ba outcome) {
	var rows []loadgen.Metric
	if sq.res != nil {
		rows = sq.res.Metrics
	} else if ba.res != nil {
		rows = ba.res.Metrics
	}
	if len(rows) == 0 {
		return
	}
	perRound := len(sq.rounds) > 1 && len(sq.rounds) == len(ba.rounds)
	if perRound {
		fmt.Fprintf(b, "\nMedians of %d rounds; ratio is the median of the rounds' ratios, listed per round.\n", len(sq.rounds))
		b.WriteString("\n| metric | squall | baseline | ratio | better | ratio per round |\n|---|---:|---:|---:|---|---|\n")
	} else {
		b.WriteString("\n| metric | squall | baseline | ratio | better |\n|---|---:|---:|---:|---|\n")
	}
	for _, m := range rows {
		sv, bv := "-", "-"
		var sm, bm loadgen.Metric
		okS, okB := false, false
		if sq.res != nil {
			if sm, okS = sq.res.Get(m.Name); okS {
				sv = fmtValue(sm)
			}
		}
		if ba.res != nil {
			if bm, okB = ba.res.Get(m.Name); okB {
				bv = fmtValue(bm)
			}
		}
		rt := "-"
		if okS && okB {
			rt = ratio(sm, bm)
		}
		if !perRound {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", name(m), sv, bv, rt, m.Better)
			continue
		}
		each := "-"
		if rs := pairedRatios(sq, ba, m.Name); rs != nil {
			rt = fmt.Sprintf("%.2f", median(rs))
			parts := make([]string, len(rs))
			for i, x := range rs {
				parts[i] = fmt.Sprintf("%.2f", x)
			}
			each = strings.Join(parts, " ")
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", name(m), sv, bv, rt, m.Better, each)
	}
}

// targets checks the targets. They are reported, never enforced:
// the machine is shared and noisy.
func (r *runner) targets() string {
	get := func(sc, sys, metric string) (loadgen.Metric, bool) {
		o := r.results[sc][sys]
		if o.res == nil {
			return loadgen.Metric{}, false
		}
		m, ok := o.res.Get(metric)
		return m, ok && !m.Missing
	}
	var b bytes.Buffer
	b.WriteString("\n## Targets (issue 6; measured in this run, not enforced)\n\n")
	if r.m.name != "full" {
		b.WriteString("Quick mode: the targets are set for the full mode's N, so these lines only show the shape.\n\n")
	}
	line := func(what string, ok, have bool, got string) {
		if !have {
			fmt.Fprintf(&b, "- %s: not measured in this run\n", what)
			return
		}
		mark := map[bool]string{true: "met", false: "NOT met"}[ok]
		fmt.Fprintf(&b, "- %s: %s (%s)\n", what, mark, got)
	}
	m := r.m
	flat := fmt.Sprintf("deliveries/s flat out (%d streams)", m.conns)
	s, ok1 := get("fanout", "squall", flat)
	bl, ok2 := get("fanout", "baseline", flat)
	rt, how := s.Value/max(bl.Value, 1), ""
	if rs := pairedRatios(r.results["fanout"]["squall"], r.results["fanout"]["baseline"], flat); rs != nil {
		rt, how = median(rs), fmt.Sprintf(" (median of %d rounds' ratios)", len(rs))
	}
	line("fanout deliveries/s at least 1.0× the baseline", ok1 && ok2 && rt >= 1, ok1 && ok2,
		fmt.Sprintf("%.0f vs %.0f, %.2f×%s", s.Value, bl.Value, rt, how))
	for _, k := range []string{"heap+stack per idle stream", "RSS per idle stream"} {
		s, ok := get("fanout", "squall", k)
		bl, okb := get("fanout", "baseline", k)
		line(k+" at most 28 KB", ok && s.Value <= 28, ok,
			fmt.Sprintf("%.1f KB; baseline %.1f KB", s.Value, bl.Value*boolf(okb)))
	}
	rate := m.fanoutRates[len(m.fanoutRates)-1]
	at := fmt.Sprintf("@ %.0f ev/s × %d streams", rate, m.fanoutLatencyConns)
	s, ok := get("fanout", "squall", "p99 latency "+at)
	bl, okb := get("fanout", "baseline", "p99 latency "+at)
	reached := ""
	sr, ok3 := get("fanout", "squall", "publish rate reached "+at)
	br, ok4 := get("fanout", "baseline", "publish rate reached "+at)
	if ok3 && ok4 && br.Value < 0.95*rate {
		// Squall sustained the load (or the branch below says it did
		// not); the baseline's p99 is then that of a saturated server.
		reached = fmt.Sprintf("; the baseline reached only %.0f of %.0f events/s", br.Value, rate)
	}
	what := fmt.Sprintf("p99 under 50 ms at %.0f events/s to %d streams", rate, m.fanoutLatencyConns)
	if ok && ok3 && sr.Value < 0.95*rate {
		fmt.Fprintf(&b, "- %s: not measurable here, the load was not sustained (p99 %.2f ms at the %.0f events/s squall reached; baseline %.2f ms at %.0f)\n",
			what, s.Value, sr.Value, bl.Value*boolf(okb), br.Value*boolf(ok4))
	} else {
		line(what, ok && s.Value < 50, ok, fmt.Sprintf("%.2f ms; baseline %.2f ms%s", s.Value, bl.Value*boolf(okb), reached))
	}
	const sameTime = "p99 stalled channel / control, same time"
	s, ok = get("slow-consumer", "squall", sameTime)
	bl, okb = get("slow-consumer", "baseline", sameTime)
	line(fmt.Sprintf("p99 of the streams beside %d stalled (among %d) within 10%% of the control channel's", m.slowStalled, min(m.slowConns, m.conns)), ok && s.Value <= 1.10, ok,
		fmt.Sprintf("%.2f×; baseline %.2f×", s.Value, bl.Value*boolf(okb)))
	return b.String()
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return math.NaN()
}
