package sse

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxChannel is the longest channel name a hub accepts, in bytes.
const MaxChannel = 256

// ErrInvalidChannel is wrapped by the error of [ValidChannel].
var ErrInvalidChannel = errors.New("sse: channel names are 1-256 bytes of letters, digits and -_.:@/")

// ValidChannel checks a channel name against the hub's contract: 1 to
// [MaxChannel] bytes of ASCII letters, digits and -_.:@/. The set is narrow
// on purpose: a name travels unescaped in a query string, a Redis channel
// and a Redis key, and must never carry a glob character (*?[]) into a
// pattern subscription. It returns nil or an error wrapping
// [ErrInvalidChannel] that quotes the first 64 bytes of the name.
func ValidChannel(name string) error {
	if len(name) == 0 || len(name) > MaxChannel {
		return fmt.Errorf("invalid channel %q: %w", truncate(name), ErrInvalidChannel)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '@', c == '/':
		default:
			return fmt.Errorf("invalid channel %q: %w", truncate(name), ErrInvalidChannel)
		}
	}
	return nil
}

// truncate keeps an error message short whatever a client sent.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// MaxID bounds an event id a publisher may set and a Last-Event-ID a client
// may send, in bytes: one bound for both, so that every id a client is sent
// can be sent back.
const MaxID = 8 << 10

// MaxRetry is the longest reconnection hint a publisher may set: 2^31
// milliseconds (about 24.9 days). A longer hint is a mistake (browser
// timers overflow past about that), and a bound every layer shares keeps
// an event the hub takes from being one a relay refuses. Unlike [Parser],
// which clamps what a server sends, a hub refuses a publish over it.
const MaxRetry = (1 << 31) * time.Millisecond

// ParseRetryMillis reads a reconnection hint given as a decimal integer of
// milliseconds, the way a publish body and a Redis envelope carry it. It
// returns an error wrapping [ErrInvalidRetry] for anything but an integer
// from 0 to [MaxRetry]. The result is an [Event.Retry]: a hint of 0 gives
// [RetryZero], so that the "retry: 0" the publisher asked for is written.
func ParseRetryMillis(s string) (time.Duration, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 || time.Duration(ms) > MaxRetry/time.Millisecond {
		return 0, fmt.Errorf("%w: %q is not an integer of milliseconds from 0 to %d", ErrInvalidRetry, s, MaxRetry/time.Millisecond)
	}
	if ms == 0 {
		return RetryZero, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}
