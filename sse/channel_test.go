package sse

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidChannel(t *testing.T) {
	for _, ok := range []string{"a", "orders", "room:42", "user@x/y.z-_", "A-Z_0.9", strings.Repeat("a", MaxChannel)} {
		assert.NoError(t, ValidChannel(ok), "ValidChannel(%q)", ok)
	}
	for _, bad := range []string{"", "a b", "é", "a\n", "a\x00", strings.Repeat("a", MaxChannel+1), "a*", "a?", "a[b]", "a%20b", "bad name!"} {
		assert.ErrorIs(t, ValidChannel(bad), ErrInvalidChannel, "ValidChannel(%q)", bad)
	}
}

// A refusal quotes the name, cut so that a hostile name cannot fill a log
// line or an HTTP answer.
func TestValidChannelErrorIsShort(t *testing.T) {
	err := ValidChannel(strings.Repeat("x", 5000) + " ")
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 200, "error of a 5,001-byte name: %q", err)
	assert.Contains(t, ValidChannel("a b").Error(), `"a b"`)
}

func TestParseRetryMillis(t *testing.T) {
	max := int64(MaxRetry / time.Millisecond)
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"0", RetryZero},
		{"3000", 3 * time.Second},
		{"2147483648", MaxRetry},
	} {
		got, err := ParseRetryMillis(tt.in)
		require.NoError(t, err, "ParseRetryMillis(%q)", tt.in)
		assert.Equal(t, tt.want, got, "ParseRetryMillis(%q)", tt.in)
	}
	for _, bad := range []string{"-1", "2147483649", "99999999999999999999", "1.5", "1e3", "", " 1", "abc", "null"} {
		_, err := ParseRetryMillis(bad)
		assert.ErrorIs(t, err, ErrInvalidRetry, "ParseRetryMillis(%q), bound %d", bad, max)
	}
}
