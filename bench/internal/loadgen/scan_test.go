package loadgen

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/squall-sse/squall/sse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type scanned struct {
	lastID string
	event  string
	data   string
}

// scanAll runs the scanner over r and returns its events with the last
// event id as a browser keeps it (ids persist across events).
func scanAll(t *testing.T, r io.Reader, bufSize int) []scanned {
	t.Helper()
	var out []scanned
	lastID := ""
	sc := newScanner(r, make([]byte, bufSize))
	if bufSize < scanBufSize {
		sc.buf = make([]byte, bufSize) // exercise growth and compaction
	}
	err := sc.run(func(ev *sseEvent, _ int64) {
		if ev.hasID {
			lastID = string(ev.id)
		}
		if ev.hasData {
			out = append(out, scanned{lastID, string(ev.event), string(ev.data)})
		}
	}, func() {})
	require.ErrorIs(t, err, io.EOF, "scanner.run")
	return out
}

// parseAll is the reference: the spec parser from sse.
func parseAll(t *testing.T, b []byte) []scanned {
	t.Helper()
	var out []scanned
	p := sse.NewParser(bytes.NewReader(b))
	for {
		ev, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, "Parser.Next")
		out = append(out, scanned{ev.ID, ev.Event, string(ev.Data)})
	}
}

func TestScannerMatchesSpecParser(t *testing.T) {
	var stream []byte
	events := []sse.Event{
		{ID: "1", Data: appendPayload(nil, kindMeasure, 0, 5, 0, 100)},
		{ID: "2", Event: "tick", Data: []byte("two\nlines")},
		{Data: []byte("no id keeps the last one")},
		{ID: "1712-0", Event: "reset", Data: []byte(`{"reason":"gone"}`)},
		{ID: "4", Data: nil},
		{ID: "5", Data: bytes.Repeat([]byte("y"), 9000)},
	}
	for _, e := range events {
		var err error
		stream, err = sse.AppendEvent(stream, e)
		require.NoError(t, err, "AppendEvent")
		stream = sse.AppendComment(stream, "keepalive")
	}
	stream = append(stream, "id: 6\r\ndata: crlf\r\n\r\n"...)
	stream = append(stream, "data:nospace\n\n"...)
	stream = append(stream, "id: only-id\n\n"...)
	stream = append(stream, "data: after id-only\n\n"...)
	stream = append(stream, "retry: 100\nunknown: x\ndata\n\n"...)

	want := parseAll(t, stream)
	require.Len(t, want, 10, "reference events")
	tests := []struct {
		name string
		r    func() io.Reader
		buf  int
	}{
		{"whole", func() io.Reader { return bytes.NewReader(stream) }, scanBufSize},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }, scanBufSize},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }, scanBufSize},
		{"small buffer grows", func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, want, scanAll(t, tt.r(), tt.buf))
		})
	}
}

func TestScannerSplitAnywhere(t *testing.T) {
	var stream []byte
	for i := range 5 {
		var err error
		stream, err = sse.AppendEvent(stream, sse.Event{ID: string(rune('a' + i)), Event: "e", Data: appendPayload(nil, kindMeasure, uint64(i), 1, 0, 30)})
		require.NoError(t, err)
	}
	want := parseAll(t, stream)
	for cut := 1; cut < len(stream); cut++ {
		r := io.MultiReader(bytes.NewReader(stream[:cut]), bytes.NewReader(stream[cut:]))
		require.Equal(t, want, scanAll(t, r, scanBufSize), "split at %d", cut)
	}
}

func TestScannerRejectsEndlessLine(t *testing.T) {
	r := io.MultiReader(bytes.NewReader([]byte("data: ")), &repeatReader{b: 'z'})
	sc := newScanner(r, nil)
	err := sc.run(func(*sseEvent, int64) {}, func() {})
	assert.ErrorIs(t, err, errLineTooLong)
}

type repeatReader struct{ b byte }

func (r *repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.b
	}
	return len(p), nil
}
