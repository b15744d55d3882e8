package squall

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMountPrefix(t *testing.T) {
	for _, tt := range []struct{ pattern, want string }{
		{"/sse/", "/sse"},
		{"/a/b/", "/a/b"},
		{"GET /sse/", "/sse"},
		{"GET  example.com/sse/", "/sse"},
		{"example.com/sse/", "/sse"},
		{"/", ""},
		{"", ""},
		{"/sse", ""},             // exact: no subtree to strip
		{"/t/{tenant}/", ""},     // wildcard: the pattern does not give the prefix
		{"/files/{path...}", ""}, // idem
	} {
		assert.Equal(t, tt.want, mountPrefix(tt.pattern), "mountPrefix(%q)", tt.pattern)
	}
}
