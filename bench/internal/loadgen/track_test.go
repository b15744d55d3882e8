package loadgen

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTracker(t *testing.T) {
	tests := []struct {
		name     string
		start    uint64
		seqs     []uint64
		end      uint64
		lost     uint64
		dups     uint64
		newCount int
	}{
		{"in order", 0, []uint64{0, 1, 2, 3}, 4, 0, 0, 4},
		{"reordered", 5, []uint64{6, 5, 8, 7}, 9, 0, 0, 4},
		{"duplicate below low", 0, []uint64{0, 1, 1, 0}, 2, 0, 2, 2},
		{"duplicate pending", 0, []uint64{2, 2, 0, 1}, 3, 0, 1, 3},
		{"gap in the middle", 0, []uint64{0, 1, 3, 4}, 5, 1, 0, 4},
		{"tail never arrived", 10, []uint64{10, 11}, 15, 3, 0, 2},
		{"nothing arrived", 3, nil, 7, 4, 0, 0},
		{"before start is a duplicate", 3, []uint64{2, 3}, 4, 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr tracker
			tr.start(tt.start)
			n := 0
			for _, s := range tt.seqs {
				if tr.add(s) {
					n++
				}
			}
			tr.finish(tt.end)
			assert.Equal(t, tt.lost, tr.lost, "lost")
			assert.Equal(t, tt.dups, tr.dups, "dups")
			assert.Equal(t, tt.newCount, n, "new")
		})
	}
}

func TestTrackerGivesUpOnOldHole(t *testing.T) {
	var tr tracker
	tr.start(0)
	// seq 0 never comes; after maxPending later arrivals it counts as lost.
	for s := uint64(1); s <= maxPending+1; s++ {
		assert.True(t, tr.add(s), "add(%d)", s)
	}
	assert.Equal(t, uint64(1), tr.lost, "lost")
	assert.Empty(t, tr.pending, "pending")
	assert.Equal(t, uint64(maxPending+2), tr.low, "low")
	assert.False(t, tr.add(0), "late arrival of a hole given up")
	tr.finish(maxPending + 2)
	assert.Equal(t, uint64(1), tr.lost, "lost after finish")
}
