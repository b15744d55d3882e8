package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Hist is a log-linear latency histogram in microseconds: exact below
// 256 µs, then 128 buckets per power of two (under 0.8 % error). Record is
// safe for concurrent use and does not allocate.
type Hist struct {
	counts [histBuckets]atomic.Uint64
}

const (
	histSub     = 128
	histBuckets = 256 + 48*histSub
)

func histIndex(us uint64) int {
	if us < 256 {
		return int(us)
	}
	shift := bits.Len64(us) - 8
	i := 256 + (shift-1)*histSub + int(us>>shift) - histSub
	return min(i, histBuckets-1)
}

// histValue is the middle of bucket i, in microseconds.
func histValue(i int) float64 {
	if i < 256 {
		return float64(i)
	}
	shift := (i-256)/histSub + 1
	m := uint64((i-256)%histSub + histSub)
	lo := m << shift
	return float64(lo) + float64(uint64(1)<<shift)/2
}

// Record adds one latency given in nanoseconds; a negative one (clock step)
// counts as zero.
func (h *Hist) Record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.counts[histIndex(uint64(ns/1000))].Add(1)
}

// Count is the number of recorded values.
func (h *Hist) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Quantile returns the q-quantile (0 < q <= 1), or 0 when empty.
func (h *Hist) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(histValue(i) * float64(time.Microsecond))
		}
	}
	return time.Duration(histValue(histBuckets-1) * float64(time.Microsecond))
}
