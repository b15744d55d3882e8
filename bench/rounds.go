package main

import (
	"fmt"
	"slices"

	"github.com/squall-sse/squall/bench/internal/loadgen"
)

// combine merges the rounds of one scenario against one server into one
// outcome: each metric is the median of its rounds, errors and notes are kept
// with their round, and the rounds themselves stay for the paired ratios.
//
// Why medians of alternating rounds: on a shared 2-core machine the speed
// of the whole box drifts by tens of percent within minutes, so one round
// per server compares two different machines; medians over rounds that
// alternate which server goes first cancel most of the drift.
func combine(rounds []outcome) outcome {
	if len(rounds) == 1 {
		return rounds[0]
	}
	var ok []*loadgen.Result
	for _, o := range rounds {
		if o.err != nil || o.skipped != "" {
			return o
		}
		ok = append(ok, o.res)
	}
	merged := &loadgen.Result{Scenario: ok[0].Scenario, Params: ok[0].Params}
	for _, m := range ok[0].Metrics {
		var vs []float64
		for _, r := range ok {
			if x, found := r.Get(m.Name); found && !x.Missing {
				vs = append(vs, x.Value)
			}
		}
		if len(vs) == 0 {
			m.Missing, m.Value = true, 0
		} else {
			m.Missing, m.Value = false, median(vs)
		}
		merged.Metrics = append(merged.Metrics, m)
	}
	for i, r := range ok {
		for _, e := range r.Errors {
			merged.Errors = append(merged.Errors, fmt.Sprintf("round %d: %s", i+1, e))
		}
		for _, n := range r.Notes {
			merged.Notes = append(merged.Notes, fmt.Sprintf("round %d: %s", i+1, n))
		}
	}
	return outcome{res: merged, rounds: ok}
}

// pairedRatios are squall / baseline for metric in each round the two ran
// side by side; nil when there were no such rounds.
func pairedRatios(sq, ba outcome, metric string) []float64 {
	if len(sq.rounds) < 2 || len(sq.rounds) != len(ba.rounds) {
		return nil
	}
	var rs []float64
	for i := range sq.rounds {
		a, okA := sq.rounds[i].Get(metric)
		b, okB := ba.rounds[i].Get(metric)
		if !okA || !okB || a.Missing || b.Missing || b.Value == 0 {
			return nil
		}
		rs = append(rs, a.Value/b.Value)
	}
	return rs
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// roundOrder is the order the servers run in round i: reversed every other
// round, so that neither always gets the machine first.
func roundOrder(syss []system, i int) []system {
	if i%2 == 0 {
		return syss
	}
	r := slices.Clone(syss)
	slices.Reverse(r)
	return r
}
