package main

import (
	"bytes"
	"fmt"

	"github.com/squall-sse/squall/bench/internal/loadgen"
)

// targets16 checks the targets of issue 16 (performance without a tax).
// Like the others they are reported, never enforced.
func (r *runner) targets16() string {
	get := func(sc, sys, metric string) (loadgen.Metric, bool) {
		o := r.results[sc][sys]
		if o.res == nil {
			return loadgen.Metric{}, false
		}
		m, ok := o.res.Get(metric)
		return m, ok && !m.Missing
	}
	// ratio is the squall / baseline ratio of metric: the median of the
	// rounds' own ratios when there are rounds.
	ratio := func(sc, metric string) (float64, string, bool) {
		s, ok1 := get(sc, "squall", metric)
		bl, ok2 := get(sc, "baseline", metric)
		if !ok1 || !ok2 || bl.Value == 0 {
			return 0, "", false
		}
		if rs := pairedRatios(r.results[sc]["squall"], r.results[sc]["baseline"], metric); rs != nil {
			return median(rs), fmt.Sprintf("%.4g vs %.4g, median of %d rounds' ratios", s.Value, bl.Value, len(rs)), true
		}
		return s.Value / bl.Value, fmt.Sprintf("%.4g vs %.4g", s.Value, bl.Value), true
	}
	var b bytes.Buffer
	b.WriteString("\n## Targets (issue 16; measured in this run, not enforced)\n\n")
	line := func(what string, ok, have bool, got string) {
		if !have {
			fmt.Fprintf(&b, "- %s: not measured in this run\n", what)
			return
		}
		mark := map[bool]string{true: "met", false: "NOT met"}[ok]
		fmt.Fprintf(&b, "- %s: %s (%s)\n", what, mark, got)
	}
	m := r.m

	rt, how, ok := ratio("many-channels", "deliveries/s flat out")
	line("1. many-channels flat out at least 1.3× the baseline", ok && rt >= 1.3, ok, fmt.Sprintf("%.2f×: %s", rt, how))

	low := m.fanoutRates[0]
	at := fmt.Sprintf("@ %.0f ev/s × %d streams", low, m.fanoutLatencyConns)
	p50, how50, ok50 := ratio("fanout", "p50 latency "+at)
	p99, how99, ok99 := ratio("fanout", "p99 latency "+at)
	line(fmt.Sprintf("2a. p50 and p99 at %.0f events/s to %d streams no worse than the baseline's", low, m.fanoutLatencyConns),
		ok50 && ok99 && p50 <= 1 && p99 <= 1, ok50 && ok99, fmt.Sprintf("p50 %.2f× (%s); p99 %.2f× (%s)", p50, how50, p99, how99))
	flat := fmt.Sprintf("deliveries/s flat out (%d streams)", m.conns)
	rt, how, ok = ratio("fanout", flat)
	line("2b. fanout flat out at least 2.0× the baseline", ok && rt >= 2, ok, fmt.Sprintf("%.2f×: %s", rt, how))
	high := m.fanoutRates[len(m.fanoutRates)-1]
	at = fmt.Sprintf("@ %.0f ev/s × %d streams", high, m.fanoutLatencyConns)
	reached, okr := get("fanout", "squall", "publish rate reached "+at)
	tail, okt := get("fanout", "squall", "p99 latency "+at)
	line(fmt.Sprintf("2c. %.0f events/s to %d streams sustained (at least %.0f reached) with p99 under 50 ms", high, m.fanoutLatencyConns, 0.99*high),
		okr && okt && reached.Value >= 0.99*high && tail.Value < 50, okr && okt, fmt.Sprintf("%.0f events/s, p99 %.1f ms", reached.Value, tail.Value))

	hs, ok1 := get("fanout", "squall", "heap+stack per idle stream")
	rss, ok2 := get("fanout", "squall", "RSS per idle stream")
	line("3. at most 16 KB heap+stack and 20 KB RSS per idle stream (fanout)", ok1 && ok2 && hs.Value <= 16 && rss.Value <= 20, ok1 && ok2,
		fmt.Sprintf("%.1f KB heap+stack, %.1f KB RSS", hs.Value, rss.Value))

	top := fmt.Sprintf("at %d streams", m.capacityConns)
	reach, ok1 := get("capacity", "squall", "one broadcast reaches every stream "+top)
	mem, ok2 := get("capacity", "squall", "heap+stack per stream "+top)
	line(fmt.Sprintf("4. capacity: %d streams in one process, a broadcast reaching all of them", m.capacityConns), ok1 && ok2, ok1 || ok2,
		fmt.Sprintf("%.0f ms for one broadcast, %.1f KB heap+stack per stream", reach.Value, mem.Value))
	return b.String()
}
