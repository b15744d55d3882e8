package httpedge

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRateKeysAreBounded fills the limiter to its bound with keys that
// are still limited and goes one past it: the least recently used goes,
// the one just used stays.
func TestRateKeysAreBounded(t *testing.T) {
	const bound = 64
	l := newKeyedLimiter(Rate{PerSecond: 0.001, Burst: 1}, bound)
	now := time.Now()
	for i := range bound {
		_, ok := l.take(fmt.Sprint("k", i), now)
		require.True(t, ok)
	}
	assert.Equal(t, bound, l.len())
	_, ok := l.take("k0", now)
	assert.False(t, ok, "k0 is limited, and now the most recently used")

	_, ok = l.take("attacker", now)
	assert.True(t, ok)
	assert.Equal(t, bound, l.len(), "at the bound: one in, one out")
	assert.Equal(t, uint64(1), l.evicted.Load(), "a bucket still limiting was forgotten")
	_, ok = l.take("k0", now)
	assert.False(t, ok, "the key used last stays limited")
	_, ok = l.take("k1", now)
	assert.True(t, ok, "the least recently used was forgotten: it starts with a full burst")

	for i := range 10 * bound {
		l.take(fmt.Sprint("flood", i), now)
	}
	assert.Equal(t, bound, l.len(), "a flood of new addresses never grows it past the bound")
}

// TestRefilledBucketsAreDropped: a bucket back to its full burst is as good
// as none, so idle keys leave without waiting for the bound.
func TestRefilledBucketsAreDropped(t *testing.T) {
	l := newKeyedLimiter(Rate{PerSecond: 10, Burst: 5}, 1000)
	now := time.Now()
	for i := range 100 {
		l.take(fmt.Sprint("idle", i), now)
	}
	assert.Equal(t, 100, l.len())
	later := now.Add(time.Second) // every bucket refilled
	for i := range 100 {
		l.take(fmt.Sprint("new", i), later)
	}
	assert.Equal(t, 100, l.len(), "each new key dropped up to two refilled ones")
	assert.Zero(t, l.evicted.Load(), "dropping a refilled bucket forgets nothing")
}

func TestRateBurstDefaultsToTheRate(t *testing.T) {
	assert.Nil(t, newKeyedLimiter(Rate{}, 0), "zero rate: no limiter")
	l := newKeyedLimiter(Rate{PerSecond: 2.5}, 0)
	assert.Equal(t, 3, l.burst)
	assert.Equal(t, DefaultRateKeys, l.max)
	assert.Equal(t, 1, newKeyedLimiter(Rate{PerSecond: 0.1}, 0).burst)
}
