package sse

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestAppendDecoded(t *testing.T) {
	const r = "\uFFFD"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"ascii", "hello", "hello"},
		{"valid multibyte", "héllo € 😀", "héllo € 😀"},
		// Unicode Standard, chapter 3, "U+FFFD Substitution of Maximal
		// Subparts": the example the WHATWG decoder follows.
		{"unicode table 3-8", "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", "a" + r + r + r + "b" + r + "c" + r + r + "d"},
		{"truncated 3-byte then ascii is one replacement", "\xE2\x82A", r + "A"},
		{"truncated 4-byte at end", "\xF0\x9F\x98", r},
		{"truncated 2-byte at end", "\xC2", r},
		{"overlong 2-byte", "\xC0\xAF", r + r},
		{"overlong 3-byte", "\xE0\x80\xAF", r + r + r},
		{"surrogate", "\xED\xA0\x80", r + r + r},
		{"above U+10FFFF", "\xF4\x90\x80\x80", r + r + r + r},
		{"invalid lead bytes", "\xFF\xFE\xF5\x80", r + r + r + r},
		{"lone continuation", "a\x80b", "a" + r + "b"},
		{"line end ends a sequence", "\xE2\x82\n", r + "\n"},
		{"bad then good sequence", "\xE2\xE2\x82\xAC", r + "€"},
		{"NUL kept", "a\x00b", "a\x00b"},
		{"BOM not stripped here", "\xEF\xBB\xBFx", "\uFEFFx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendDecoded([]byte("pre:"), []byte(tt.in))
			assert.Equal(t, "pre:"+tt.want, string(got), "appendDecoded(%q)", tt.in)
			assert.Equal(t, tt.want, string(refDecode([]byte(tt.in))), "refDecode(%q)", tt.in)
		})
	}
}

// refDecode is an independent oracle for the WHATWG UTF-8 decoder, built on
// the definition of a maximal subpart: at each ill-formed position, the
// longest prefix of a well-formed sequence (at least one byte) becomes one
// U+FFFD.
func refDecode(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			out = append(out, b[:size]...)
			b = b[size:]
			continue
		}
		n := 1
		for k := min(3, len(b)); k >= 2; k-- {
			if isPrefixOfValid(b[:k]) {
				n = k
				break
			}
		}
		out = append(out, "\uFFFD"...)
		b = b[n:]
	}
	return out
}

// isPrefixOfValid reports whether p (2 or 3 bytes) can be completed into a
// well-formed sequence: only the second byte has a restricted range, so
// padding with 0x80 is enough to find out.
func isPrefixOfValid(p []byte) bool {
	var want int
	switch c := p[0]; {
	case c >= 0xC2 && c <= 0xDF:
		want = 2
	case c >= 0xE0 && c <= 0xEF:
		want = 3
	case c >= 0xF0 && c <= 0xF4:
		want = 4
	default:
		return false
	}
	if len(p) >= want {
		return false // complete but invalid, or it would have decoded
	}
	padded := append([]byte(nil), p...)
	for len(padded) < want {
		padded = append(padded, 0x80)
	}
	return utf8.Valid(padded)
}

func FuzzDecodeUTF8(f *testing.F) {
	for _, s := range []string{"", "abc", "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", "\xF0\x9F\x98", "\xED\xA0\x80", "é😀\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := appendDecoded(nil, in)
		assert.True(t, utf8.Valid(got), "appendDecoded(%q) = %q is not valid UTF-8", in, got)
		assert.Equal(t, string(refDecode(in)), string(got), "appendDecoded(%q)", in)
		if utf8.Valid(in) {
			assert.Equal(t, string(in), string(got), "valid input must be unchanged")
		}
	})
}
