package httpedge

import (
	"errors"
	"fmt"
)

// MaxChannelName is the longest channel name accepted, in bytes.
const MaxChannelName = 256

var errChannel = errors.New("channel names are 1-256 bytes of letters, digits and -_.:@/")

// ValidChannel checks a channel name against the hub's contract: 1–256 bytes
// of ASCII letters, digits and -_.:@/.
func ValidChannel(name string) error {
	if len(name) == 0 || len(name) > MaxChannelName {
		return fmt.Errorf("invalid channel %q: %w", truncate(name), errChannel)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '@', c == '/':
		default:
			return fmt.Errorf("invalid channel %q: %w", truncate(name), errChannel)
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
