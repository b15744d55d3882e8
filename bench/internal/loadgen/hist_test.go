package loadgen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestHistIndexIsMonotonicAndTight(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<30; us = us*17/16 + 1 {
		i := histIndex(us)
		assert.GreaterOrEqual(t, i, prev, "histIndex(%d)", us)
		prev = i
		mid := histValue(i)
		assert.InEpsilon(t, float64(us)+1, mid+1, 0.01, "histValue(histIndex(%d))", us)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h Hist
	assert.Zero(t, h.Quantile(0.99), "empty")
	for i := 1; i <= 1000; i++ {
		h.Record(int64(i) * int64(time.Millisecond) / 10) // 0.1 ms .. 100 ms
	}
	h.Record(-5)
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 50 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{0.999, 100 * time.Millisecond},
		{1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		assert.InEpsilon(t, float64(tt.want), float64(got), 0.01, "Quantile(%v)", tt.q)
	}
	assert.Equal(t, uint64(1001), h.Count())
}

func TestHistRecordDoesNotAllocate(t *testing.T) {
	var h Hist
	assert.Zero(t, testing.AllocsPerRun(100, func() { h.Record(123456) }))
}
