package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeedReader(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "no BOM", body: "data: a\n\n", want: "id: 7\ndata: a\n\n"},
		{name: "BOM dropped", body: "\xEF\xBB\xBFdata: a\n\n", want: "id: 7\ndata: a\n\n"},
		{name: "only the first BOM", body: "\xEF\xBB\xBF\xEF\xBB\xBFdata", want: "id: 7\n\xEF\xBB\xBFdata"},
		{name: "BOM prefix that is not one", body: "\xEF\xBBxdata", want: "id: 7\n\xEF\xBBxdata"},
		{name: "body shorter than a BOM", body: "\xEF", want: "id: 7\n\xEF"},
		{name: "empty body", body: "", want: "id: 7\n"},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{name: "whole", wrap: func(r io.Reader) io.Reader { return r }},
		{name: "one byte at a time", wrap: iotest.OneByteReader},
		{name: "data with EOF", wrap: iotest.DataErrReader},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				r := newSeedReader("7", rd.wrap(strings.NewReader(tt.body)))
				got, err := io.ReadAll(iotest.OneByteReader(r))
				require.NoError(t, err, "ReadAll")
				assert.Equal(t, tt.want, string(got), "seeded stream")
			})
		}
	}
}

func TestSeedReaderError(t *testing.T) {
	boom := errors.New("boom")
	r := newSeedReader("1", io.MultiReader(strings.NewReader("\xEF"), iotest.ErrReader(boom)))
	got, err := io.ReadAll(r)
	assert.ErrorIs(t, err, boom, "ReadAll")
	assert.Equal(t, "id: 1\n\xEF", string(got), "bytes before the error")
}

// A reader that never makes progress must not hang the BOM check.
func TestSeedReaderNoProgress(t *testing.T) {
	r := newSeedReader("1", emptyReader{})
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	assert.NoError(t, err, "first Read: the seed")
	assert.Equal(t, "id: 1\n", string(buf[:n]), "first Read")
	_, err = r.Read(buf)
	assert.ErrorIs(t, err, io.ErrNoProgress, "second Read")
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }
