package loadgen

import (
	"fmt"
	"time"
)

// capacitySteps is how many steps the capacity scenario takes to reach its
// streams.
const capacitySteps = 4

// capacity adds streams on one channel in equal steps up to cfg.Conns (in
// full mode just under the hub's file descriptor limit) and, at each step,
// once the new streams are subscribed and idle, measures memory per stream
// (over all streams open) and sends one broadcast: the time from its
// publish until the last stream has it is what one event costs the hub at
// that size.
func (g *Gen) capacity(r *Result) error {
	cfg := g.cfg
	m0, err := g.mem()
	if err != nil {
		return err
	}
	open := 0
	for step := 1; step <= capacitySteps; step++ {
		n := cfg.Conns*step/capacitySteps - open
		cs, err := g.open(n, zero, zero, false)
		if err != nil {
			return err
		}
		if err := g.sync(cs); err != nil {
			return err
		}
		open += n
		time.Sleep(cfg.Settle)
		m, err := g.mem()
		if err != nil {
			return err
		}
		label := fmt.Sprintf("at %d streams", open)
		r.add("heap+stack per stream "+label, "KB", float64(m.HeapStack-m0.HeapStack)/float64(open)/1024, Lower)
		r.add("RSS per stream "+label, "KB", float64(m.RSS-m0.RSS)/float64(open)/1024, Lower)
		p := g.broadcast()
		if p.drained {
			r.add("one broadcast reaches every stream "+label, "ms", ms(p.elapsed), Lower)
		} else {
			r.missing("one broadcast reaches every stream "+label, "ms", Lower)
			r.notef("%s: the broadcast had not reached %d streams after %v", label, p.missing, cfg.DrainTimeout)
		}
		r.add("p50 latency of that broadcast "+label, "ms", ms(p.hist.Quantile(0.5)), Lower)
	}
	return nil
}

// broadcast publishes one event to channel 0 and waits until every counted
// stream has it.
func (g *Gen) broadcast() *phase {
	m := g.begin(fmt.Sprintf("one broadcast to %d streams", g.counted()))
	g.publishMeasured(0)
	return g.end(m, time.Now())
}
