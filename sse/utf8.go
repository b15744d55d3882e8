package sse

import "unicode/utf8"

// appendDecoded appends b to dst as the WHATWG Encoding Standard's "UTF-8
// decode" (without BOM handling) would produce it: valid UTF-8 is copied,
// and each maximal ill-formed subsequence becomes one U+FFFD. Go's own
// conversions differ: []rune and utf8.DecodeRune give one U+FFFD per bad
// byte, and strings.ToValidUTF8 one per run of bad bytes, so none of them
// matches what a browser's EventSource sees.
//
// b is treated as a complete input: a sequence cut short at its end becomes
// U+FFFD. The parser decodes line by line, which gives the same result as
// decoding the whole stream first, because CR and LF are ASCII and so
// always end any pending sequence.
func appendDecoded(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	var (
		needed, seen int
		lower, upper byte = 0x80, 0xBF
		start        int  // index of the first byte of the pending sequence
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				dst = append(dst, c)
			case c >= 0xC2 && c <= 0xDF:
				needed, start = 1, i
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				} else if c == 0xED {
					upper = 0x9F
				}
				needed, start = 2, i
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				} else if c == 0xF4 {
					upper = 0x8F
				}
				needed, start = 3, i
			default:
				dst = append(dst, "\uFFFD"...)
			}
			continue
		}
		if c < lower || c > upper {
			// The spec "prepends" c back to the stream: it is examined again
			// as the possible start of a new sequence.
			needed, seen, lower, upper = 0, 0, 0x80, 0xBF
			dst = append(dst, "\uFFFD"...)
			i--
			continue
		}
		lower, upper = 0x80, 0xBF
		seen++
		if seen == needed {
			// The bytes were checked against the exact ranges above, so the
			// sequence is well-formed and can be copied as is.
			dst = append(dst, b[start:i+1]...)
			needed, seen = 0, 0
		}
	}
	if needed != 0 {
		dst = append(dst, "\uFFFD"...)
	}
	return dst
}
