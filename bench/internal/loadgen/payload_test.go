package loadgen

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPayloadRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		kind byte
		seq  uint64
		ts   int64
		ch   int
		size int
	}{
		{"measured 100 B", kindMeasure, 42, 1_700_000_000_123_456_789, 3, 100},
		{"sync", kindSync, 0, 1, 0, 100},
		{"size below the fields", kindMeasure, 123456, 1_700_000_000_000_000_000, 4999, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendPayload(nil, tt.kind, tt.seq, tt.ts, tt.ch, tt.size)
			assert.GreaterOrEqual(t, len(b), tt.size, "appendPayload size")
			kind, seq, ts, ch, ok := parsePayload(b)
			require.True(t, ok, "parsePayload(%q)", b)
			assert.Equal(t, tt.kind, kind)
			assert.Equal(t, tt.seq, seq)
			assert.Equal(t, tt.ts, ts)
			assert.Equal(t, tt.ch, ch)
		})
	}
}

func TestParsePayloadRejects(t *testing.T) {
	for _, in := range []string{"", "M", "X1 2 3 ", "M1 2 3", "M1 2", "Ma 2 3 ", "M 2 3 ", "M99999999999999999999 2 3 ", "reason"} {
		t.Run(in, func(t *testing.T) {
			_, _, _, _, ok := parsePayload([]byte(in))
			assert.False(t, ok, "parsePayload(%q)", in)
		})
	}
}

func TestParsePayloadDoesNotAllocate(t *testing.T) {
	b := appendPayload(nil, kindMeasure, 7, 8, 9, 100)
	allocs := testing.AllocsPerRun(100, func() { parsePayload(b) })
	assert.Zero(t, allocs)
}
