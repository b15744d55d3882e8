package client

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBackoff(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name       string
		base       time.Duration
		fails      int
		limit      time.Duration
		retryAfter time.Duration
		jitter     float64
		rnd        float64
		want       time.Duration
	}{
		{name: "after a good stream: the base", base: s, fails: 0, limit: 30 * s, want: s},
		{name: "first failure: the base", base: s, fails: 1, limit: 30 * s, want: s},
		{name: "then doubling", base: s, fails: 3, limit: 30 * s, want: 4 * s},
		{name: "capped", base: s, fails: 6, limit: 30 * s, want: 30 * s},
		{name: "capped far out without overflow", base: s, fails: 10_000, limit: 30 * s, want: 30 * s},
		{name: "no cap", base: s, fails: 6, limit: -1, want: 32 * s},
		{name: "no cap saturates", base: s, fails: 10_000, limit: -1, want: time.Second << 33},
		{name: "server hint above the cap is kept", base: 60 * s, fails: 3, limit: 30 * s, want: 60 * s},
		{name: "zero base: at once after a good stream", base: 0, fails: 0, limit: 30 * s, want: 0},
		{name: "zero base: failures from 1ms", base: 0, fails: 3, limit: 30 * s, want: 4 * time.Millisecond},
		{name: "Retry-After raises", base: s, fails: 1, limit: 30 * s, retryAfter: 5 * s, want: 5 * s},
		{name: "Retry-After above the cap is kept", base: s, fails: 1, limit: 30 * s, retryAfter: 120 * s, want: 120 * s},
		{name: "Retry-After below the backoff", base: s, fails: 4, limit: 30 * s, retryAfter: 2 * s, want: 8 * s},
		{name: "jitter adds", base: s, fails: 1, limit: 30 * s, jitter: 0.5, rnd: 0.5, want: 1250 * time.Millisecond},
		{name: "jitter on top of the cap", base: s, fails: 9, limit: 30 * s, jitter: 0.5, rnd: 0.999, want: 30*s + 14985*time.Millisecond},
		{name: "jitter saturates", base: math.MaxInt64 / 2, fails: 0, limit: -1, jitter: 2, rnd: 0.9, want: math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := backoff(tt.base, tt.fails, tt.limit, tt.retryAfter, tt.jitter, tt.rnd)
			assert.Equal(t, tt.want, got, "backoff(%v, %d, %v, %v, %v, %v)",
				tt.base, tt.fails, tt.limit, tt.retryAfter, tt.jitter, tt.rnd)
		})
	}
}

func TestSettingsDefaults(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want func(t *testing.T, s settings)
	}{
		{name: "zero value", cfg: Config{}, want: func(t *testing.T, s settings) {
			assert.NotNil(t, s.client, "client")
			assert.Zero(t, s.client.Timeout, "client.Timeout")
			assert.NotNil(t, s.log, "log")
			assert.Equal(t, DefaultInitialRetry, s.initialRetry, "initialRetry")
			assert.Equal(t, DefaultMaxRetry, s.maxRetry, "maxRetry")
			assert.Equal(t, DefaultJitter, s.jitter, "jitter")
			assert.Zero(t, s.maxAttempts, "maxAttempts")
			assert.Zero(t, s.idleTimeout, "idleTimeout")
			assert.Zero(t, s.maxEvent, "maxEvent: the parser's default")
		}},
		{name: "negatives", cfg: Config{InitialRetry: -1, MaxRetry: -1, Jitter: -1, IdleTimeout: -1, MaxEventBytes: -1}, want: func(t *testing.T, s settings) {
			assert.Zero(t, s.initialRetry, "initialRetry")
			assert.Negative(t, s.maxRetry, "maxRetry")
			assert.Zero(t, s.jitter, "jitter")
			assert.Zero(t, s.idleTimeout, "idleTimeout")
			assert.Equal(t, -1, s.maxEvent, "maxEvent")
			assert.Equal(t, -1, s.maxLine, "maxLine")
		}},
		{name: "MaxEventBytes leaves room for the field name", cfg: Config{MaxEventBytes: 1000}, want: func(t *testing.T, s settings) {
			assert.Equal(t, 1000, s.maxEvent, "maxEvent")
			assert.Equal(t, 1064, s.maxLine, "maxLine")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want(t, tt.cfg.settings())
		})
	}
}
