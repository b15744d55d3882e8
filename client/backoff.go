package client

import (
	"math"
	"time"
)

// backoff returns the wait before the next attempt.
//
// base is the reconnection time (the server's retry hint, else
// InitialRetry); fails counts the consecutive failed attempts so far, 0
// after a stream that delivered events. The wait is base after 0 or 1
// failure and doubles with each further one, up to limit (negative: no
// cap), which never goes below base. A Retry-After raises it. Jitter then
// adds up to jitter times the wait, drawn with rnd in [0, 1).
func backoff(base time.Duration, fails int, limit, retryAfter time.Duration, jitter, rnd float64) time.Duration {
	d := base
	if fails > 0 {
		if d <= 0 {
			d = minFailureRetry
		}
		if limit >= 0 {
			limit = max(limit, base)
		}
		for i := 1; i < fails; i++ {
			if (limit >= 0 && d >= limit) || d > math.MaxInt64/2 {
				break
			}
			d *= 2
		}
		if limit >= 0 {
			d = min(d, limit)
		}
	}
	d = max(d, retryAfter)
	if jitter > 0 && d > 0 {
		extra := jitter * rnd * float64(d)
		if extra >= float64(math.MaxInt64-d) {
			return math.MaxInt64
		}
		d += time.Duration(extra)
	}
	return d
}
