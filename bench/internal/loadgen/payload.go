package loadgen

import "strconv"

// Payload kinds. A sync event proves a stream is subscribed and is never
// counted; a measured event carries a per-channel sequence number that the
// trackers check for gaps and duplicates.
const (
	kindSync    = 'S'
	kindMeasure = 'M'
)

// appendPayload writes the event data the generator publishes: the kind,
// then "seq ts ch " in decimal, then 'x' up to size bytes. The fields come
// first so a receiver parses them without looking at the padding, and the
// characters need no JSON escaping, so the publisher can splice the payload
// into its request body as is.
func appendPayload(dst []byte, kind byte, seq uint64, ts int64, ch int, size int) []byte {
	start := len(dst)
	dst = append(dst, kind)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(ch), 10)
	dst = append(dst, ' ')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// parsePayload reads back what appendPayload wrote. It does not allocate.
func parsePayload(b []byte) (kind byte, seq uint64, ts int64, ch int, ok bool) {
	if len(b) < 2 {
		return 0, 0, 0, 0, false
	}
	kind = b[0]
	if kind != kindSync && kind != kindMeasure {
		return 0, 0, 0, 0, false
	}
	rest := b[1:]
	var v uint64
	if v, rest, ok = parseUint(rest); !ok {
		return 0, 0, 0, 0, false
	}
	seq = v
	if v, rest, ok = parseUint(rest); !ok {
		return 0, 0, 0, 0, false
	}
	ts = int64(v)
	if v, _, ok = parseUint(rest); !ok {
		return 0, 0, 0, 0, false
	}
	return kind, seq, ts, int(v), true
}

// parseUint reads decimal digits up to a space and returns what follows the
// space.
func parseUint(b []byte) (uint64, []byte, bool) {
	var v uint64
	i := 0
	for ; i < len(b) && b[i] != ' '; i++ {
		c := b[i]
		if c < '0' || c > '9' || i >= 19 {
			return 0, nil, false
		}
		v = v*10 + uint64(c-'0')
	}
	if i == 0 || i == len(b) {
		return 0, nil, false
	}
	return v, b[i+1:], true
}
