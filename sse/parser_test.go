package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ev is an Event with its data as a string, so that expectations compare
// without caring about nil versus empty slices.
type ev struct {
	ID, Event, Data string
	Retry           time.Duration
}

func view(e Event) ev {
	return ev{ID: e.ID, Event: e.Event, Data: string(e.Data), Retry: e.Retry}
}

// parsed is everything a parser reports about one stream.
type parsed struct {
	events   []ev
	err      error
	lastID   string
	retry    time.Duration
	comments []string
}

func parseAll(r io.Reader, setup func(*Parser)) parsed {
	p := NewParser(r)
	var out parsed
	p.Comment = func(s string) { out.comments = append(out.comments, s) }
	if setup != nil {
		setup(p)
	}
	for {
		e, err := p.Next()
		if err != nil {
			out.err = err
			break
		}
		out.events = append(out.events, view(e))
	}
	out.lastID, out.retry = p.LastEventID(), p.Retry()
	return out
}

// chunkReader returns one chunk per Read, to place read boundaries exactly.
type chunkReader struct{ chunks []string }

func (c *chunkReader) Read(b []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func TestParser(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name         string
		in           string
		want         []ev
		wantLastID   string
		wantRetry    time.Duration
		wantComments []string
	}{
		// The examples of the WHATWG "Event stream interpretation" section.
		{name: "spec: stock ticker", in: "data: YHOO\ndata: +2\ndata: 10\n\n", want: []ev{{Data: "YHOO\n+2\n10"}}},
		{name: "spec: comment, ids and leading space",
			in: ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
			want: []ev{
				{ID: "1", Data: "first event"},
				{ID: "", Data: "second event"},
				{ID: "", Data: " third event"},
			},
			wantComments: []string{"test stream"}},
		{name: "spec: last event needs its blank line", in: "data: first\n\ndata:  third event\n", want: []ev{{Data: "first"}}},
		{name: "spec: two identical events", in: "data: test\n\ndata:test\n\n", want: []ev{{Data: "test"}, {Data: "test"}}},
		{name: "spec: data with no value", in: "data\n\ndata\ndata\n\ndata:", want: []ev{{Data: ""}, {Data: "\n"}}},

		{name: "empty input", in: ""},
		{name: "only blank lines", in: "\n\r\n\r\n"},
		{name: "BOM skipped", in: "\xEF\xBB\xBFdata: x\n\n", want: []ev{{Data: "x"}}},
		{name: "BOM skipped only once", in: "\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n", want: []ev{{Data: "y"}}},
		{name: "BOM only at the start of the stream", in: "data: a\n\n\xEF\xBB\xBFdata: b\n\n", want: []ev{{Data: "a"}}},
		{name: "BOM inside a value kept", in: "data: \xEF\xBB\xBFx\n\n", want: []ev{{Data: "\uFEFFx"}}},
		{name: "partial BOM is not a BOM", in: "\xEF\xBBdata: x\n\ndata: y\n\n", want: []ev{{Data: "y"}}},
		{name: "comments", in: ": hello\n:  two spaces\n:\n:no space\n:a:b\ndata: x\n\n", want: []ev{{Data: "x"}},
			wantComments: []string{"hello", " two spaces", "", "no space", "a:b"}},
		{name: "keepalive only", in: ": keepalive\n\n", wantComments: []string{"keepalive"}},
		{name: "one leading space stripped", in: "data:  x\n\n", want: []ev{{Data: " x"}}},
		{name: "no space after colon", in: "data:x\n\n", want: []ev{{Data: "x"}}},
		{name: "tab not stripped", in: "data:\tx\n\n", want: []ev{{Data: "\tx"}}},
		{name: "trailing spaces kept", in: "data: x  \n\n", want: []ev{{Data: "x  "}}},
		{name: "colons in value", in: "data: a:b: c\n\n", want: []ev{{Data: "a:b: c"}}},
		{name: "lone CR line ends", in: "data: a\rdata: b\r\r", want: []ev{{Data: "a\nb"}}},
		{name: "CRLF line ends", in: "data: a\r\ndata: b\r\n\r\n", want: []ev{{Data: "a\nb"}}},
		{name: "mixed line ends", in: "data: a\r\n\rdata: b\n\r\ndata: c\r\n", want: []ev{{Data: "a"}, {Data: "b"}}},
		{name: "CR then CRLF", in: "data: a\r\r\n", want: []ev{{Data: "a"}}},
		{name: "LF then CR", in: "data: a\n\r", want: []ev{{Data: "a"}}},
		{name: "empty data lines", in: "data\ndata:\ndata: \n\n", want: []ev{{Data: "\n\n"}}},
		{name: "NUL in data kept", in: "data: a\x00b\n\n", want: []ev{{Data: "a\x00b"}}},
		{name: "event type", in: "event: add\ndata: 1\n\n", want: []ev{{Event: "add", Data: "1"}}},
		{name: "last event field wins", in: "event: a\nevent: b\ndata: 1\n\n", want: []ev{{Event: "b", Data: "1"}}},
		{name: "event type reset after dispatch", in: "event: a\ndata: 1\n\ndata: 2\n\n", want: []ev{{Event: "a", Data: "1"}, {Data: "2"}}},
		{name: "event type reset by block without data", in: "event: a\n\ndata: 2\n\n", want: []ev{{Data: "2"}}},
		{name: "event with no value", in: "event\ndata: x\n\n", want: []ev{{Data: "x"}}},
		{name: "event with leading spaces", in: "event:  e\ndata\n\n", want: []ev{{Event: " e", Data: ""}}},
		{name: "id persists across events", in: "id: 1\ndata: a\n\ndata: b\n\n", want: []ev{{ID: "1", Data: "a"}, {ID: "1", Data: "b"}}, wantLastID: "1"},
		{name: "id reset to empty", in: "id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n",
			want: []ev{{ID: "1", Data: "a"}, {ID: "", Data: "b"}, {ID: "2", Data: "c"}, {ID: "", Data: "d"}}},
		{name: "id with NUL ignored", in: "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n", want: []ev{{ID: "1", Data: "a"}, {ID: "1", Data: "b"}}, wantLastID: "1"},
		{name: "id set in block without data", in: "id: 7\n\ndata: x\n\n", want: []ev{{ID: "7", Data: "x"}}, wantLastID: "7"},
		{name: "id after data in block", in: "data: x\nid: 3\n\n", want: []ev{{ID: "3", Data: "x"}}, wantLastID: "3"},
		{name: "id of incomplete event is in the buffer", in: "data: a\n\nid: 9\ndata: b\n", want: []ev{{Data: "a"}}, wantLastID: "9"},
		{name: "id with spaces and colon", in: "id:  a: b \ndata\n\n", want: []ev{{ID: " a: b ", Data: ""}}, wantLastID: " a: b "},
		{name: "retry", in: "retry: 1000\ndata: x\n\n", want: []ev{{Data: "x", Retry: time.Second}}, wantRetry: time.Second},
		{name: "retry leading zeros", in: "retry: 007\n\n", wantRetry: 7 * ms},
		{name: "retry zero", in: "retry: 5\n\nretry: 0\n\n", wantRetry: 0},
		{name: "retry last valid wins", in: "retry: 5\nretry: 6\n\n", wantRetry: 6 * ms},
		{name: "retry with non-digits ignored", in: "retry: 5\n\nretry: 10x\nretry: -1\nretry: 1.5\nretry: +5\nretry:  5\nretry: 5 \nretry: ５\nretry: 1e3\n\n", wantRetry: 5 * ms},
		{name: "empty retry ignored", in: "retry: 5\n\nretry\nretry:\nretry: \n\n", wantRetry: 5 * ms},
		{name: "huge retry clamped", in: "retry: 99999999999999999999999\n\n", wantRetry: time.Duration(maxRetryMS) * ms},
		{name: "retry in dispatching block only", in: "retry: 5\ndata: a\n\ndata: b\n\n", want: []ev{{Data: "a", Retry: 5 * ms}, {Data: "b"}}, wantRetry: 5 * ms},
		{name: "retry zero in dispatching block", in: "retry: 0\ndata: a\n\n", want: []ev{{Data: "a", Retry: RetryZero}}, wantRetry: 0},
		{name: "retry in block without data", in: "retry: 5\n\ndata: x\n\n", want: []ev{{Data: "x"}}, wantRetry: 5 * ms},
		{name: "unknown fields ignored", in: "foo: bar\ndata: x\nData: y\nDATA: z\n data: q\ndata : r\nid : 5\nretry : 5\n\n", want: []ev{{Data: "x"}}},
		{name: "field with no colon", in: "data\nid\nevent\nretry\nfoo\n\n", want: []ev{{Data: ""}}},
		{name: "incomplete last event dropped", in: "data: a\n\ndata: b\n", want: []ev{{Data: "a"}}},
		{name: "unterminated last line dropped", in: "data: a\n\ndata: b\n\ndata: c", want: []ev{{Data: "a"}, {Data: "b"}}},
		{name: "invalid UTF-8 replaced", in: "id: \xff\nevent: \xE2\x82\ndata: a\xffb\xF0\x9F\x98\n\n",
			want: []ev{{ID: "\uFFFD", Event: "\uFFFD", Data: "a\uFFFDb\uFFFD"}}, wantLastID: "\uFFFD"},
		{name: "invalid UTF-8 in field name", in: "dat\xff: x\n\n"},
		{name: "invalid UTF-8 in comment", in: ": \xff\n\n", wantComments: []string{"\uFFFD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseAll(strings.NewReader(tt.in), nil)
			assert.ErrorIs(t, got.err, io.EOF, "Next at the end of %q", tt.in)
			assert.Equal(t, tt.want, got.events, "events of %q", tt.in)
			assert.Equal(t, tt.wantLastID, got.lastID, "LastEventID after %q", tt.in)
			assert.Equal(t, tt.wantRetry, got.retry, "Retry after %q", tt.in)
			assert.Equal(t, tt.wantComments, got.comments, "comments of %q", tt.in)

			// The same stream, one byte per Read, must give the same.
			assert.Equal(t, got, parseAll(iotest.OneByteReader(strings.NewReader(tt.in)), nil), "one byte per Read")
		})
	}
}

func TestParserCRLFSplitAcrossReads(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []ev
	}{
		{"CR | LF is one line end", []string{"data: a\r", "\ndata: b\r", "\n\r", "\n"}, []ev{{Data: "a\nb"}}},
		{"CR | CR is two line ends", []string{"data: a\r", "\rdata: b\r\r"}, []ev{{Data: "a"}, {Data: "b"}}},
		{"CR | LF | LF", []string{"data: a\r", "\n", "\n"}, []ev{{Data: "a"}}},
		{"CR | empty reads | LF", []string{"data: a\r", "", "", "\ndata: b\n\n"}, []ev{{Data: "a\nb"}}},
		{"BOM split", []string{"\xEF", "\xBB", "\xBFdata: x\n\n"}, []ev{{Data: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseAll(&chunkReader{chunks: tt.chunks}, nil)
			assert.ErrorIs(t, got.err, io.EOF)
			assert.Equal(t, tt.want, got.events, "events of %q", tt.chunks)
		})
	}
}

// A line that ends in CR must be handled at once: waiting to see whether
// an LF follows would hold back a live event until the next write.
func TestParserDoesNotWaitAfterCR(t *testing.T) {
	pr, pw := io.Pipe()
	p := NewParser(pr)
	type result struct {
		ev  Event
		err error
	}
	results := make(chan result)
	go func() {
		for {
			e, err := p.Next()
			results <- result{e, err}
			if err != nil {
				return
			}
		}
	}()

	_, err := pw.Write([]byte("data: one\r\r"))
	require.NoError(t, err)
	select {
	case r := <-results:
		require.NoError(t, r.err)
		assert.Equal(t, "one", string(r.ev.Data))
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return the CR-terminated event before more input arrived")
	}

	// The LF that may follow the last CR belongs to that CR.
	_, err = pw.Write([]byte("\ndata: two\n\n"))
	require.NoError(t, err)
	r := <-results
	require.NoError(t, r.err)
	assert.Equal(t, "two", string(r.ev.Data))

	require.NoError(t, pw.Close())
	r = <-results
	assert.ErrorIs(t, r.err, io.EOF)
}

func TestParserReadErrors(t *testing.T) {
	boom := errors.New("boom")

	t.Run("events before the error, then the error as is", func(t *testing.T) {
		p := NewParser(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)))
		e, err := p.Next()
		require.NoError(t, err)
		assert.Equal(t, "a", string(e.Data))
		_, err = p.Next()
		assert.Same(t, boom, err, "the reader's error is returned unwrapped")
		_, err = p.Next()
		assert.Same(t, boom, err, "the error is sticky")
	})

	t.Run("data and EOF in one Read", func(t *testing.T) {
		got := parseAll(iotest.DataErrReader(strings.NewReader("data: a\n\ndata: b\n\n")), nil)
		assert.ErrorIs(t, got.err, io.EOF)
		assert.Equal(t, []ev{{Data: "a"}, {Data: "b"}}, got.events)
	})

	t.Run("reader that makes no progress", func(t *testing.T) {
		_, err := NewParser(zeroReader{}).Next()
		assert.ErrorIs(t, err, io.ErrNoProgress)
	})

	t.Run("timeout then data", func(t *testing.T) {
		p := NewParser(iotest.TimeoutReader(strings.NewReader("data: a\n")))
		_, err := p.Next()
		assert.ErrorIs(t, err, iotest.ErrTimeout)
	})
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestParserLimits(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		maxLine  int
		maxEvent int
		want     []ev
		wantErr  error
	}{
		{name: "line at the limit", in: "data: 12\n\n", maxLine: 8, want: []ev{{Data: "12"}}, wantErr: io.EOF},
		{name: "line over the limit", in: "data: a\n\ndata: 123\n\n", maxLine: 8, want: []ev{{Data: "a"}}, wantErr: ErrLineTooLong},
		{name: "unterminated line over the limit", in: "data: a\n\ndata: 123", maxLine: 8, want: []ev{{Data: "a"}}, wantErr: ErrLineTooLong},
		{name: "comment over the limit", in: ": 12345678\n", maxLine: 8, wantErr: ErrLineTooLong},
		{name: "no line limit", in: "data: " + strings.Repeat("x", DefaultMaxLineBytes+1) + "\n\n", maxLine: -1, maxEvent: -1,
			want: []ev{{Data: strings.Repeat("x", DefaultMaxLineBytes+1)}}, wantErr: io.EOF},
		{name: "default line limit", in: "data: " + strings.Repeat("x", DefaultMaxLineBytes) + "\n\n", wantErr: ErrLineTooLong},
		{name: "event at the limit", in: "data: 1234567\n\n", maxEvent: 8, want: []ev{{Data: "1234567"}}, wantErr: io.EOF},
		{name: "event over the limit", in: "data: 1234\ndata: 5678\n\n", maxEvent: 8, wantErr: ErrEventTooLong},
		{name: "limit applies per event", in: "data: 123\n\ndata: 456\n\n", maxEvent: 4, want: []ev{{Data: "123"}, {Data: "456"}}, wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tt.in)},
				{"one byte", iotest.OneByteReader(strings.NewReader(tt.in))},
			} {
				got := parseAll(r.r, func(p *Parser) {
					p.MaxLineBytes, p.MaxEventBytes = tt.maxLine, tt.maxEvent
				})
				assert.ErrorIs(t, got.err, tt.wantErr, "%s: final error", r.name)
				assert.Equal(t, tt.want, got.events, "%s: events", r.name)
			}
		})
	}
}

func TestParserErrorIsSticky(t *testing.T) {
	p := NewParser(strings.NewReader("data: 123456789\n\ndata: ok\n\n"))
	p.MaxLineBytes = 8
	_, err := p.Next()
	require.ErrorIs(t, err, ErrLineTooLong)
	_, err2 := p.Next()
	assert.Equal(t, err, err2, "Next after a limit error")
}

// One large event must not pin its buffers for the rest of the stream.
func TestParserReleasesLargeBuffers(t *testing.T) {
	big := strings.Repeat("x", 512<<10)
	p := NewParser(strings.NewReader("data: " + big + "\n\ndata: small\n\n"))
	e, err := p.Next()
	require.NoError(t, err)
	require.Len(t, e.Data, len(big))
	e, err = p.Next()
	require.NoError(t, err)
	assert.Equal(t, "small", string(e.Data))
	assert.LessOrEqual(t, cap(p.buf), keepBufSize, "line buffer capacity after the large event")
	assert.LessOrEqual(t, cap(p.data), keepBufSize, "data buffer capacity after the large event")
}

// The parser must work on an endless stream without collecting it.
func TestParserIsIncremental(t *testing.T) {
	frame, err := AppendEvent(nil, Event{ID: "1", Event: "tick", Data: []byte("x")})
	require.NoError(t, err)
	p := NewParser(&repeatReader{frame: frame})
	for i := range 10_000 {
		e, err := p.Next()
		require.NoError(t, err, "event %d", i)
		require.Equal(t, "x", string(e.Data))
	}
	assert.LessOrEqual(t, cap(p.buf), initialBufSize, "the line buffer stays at its initial size")
}

// repeatReader returns the same frame forever.
type repeatReader struct {
	frame []byte
	off   int
}

func (r *repeatReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], r.frame[r.off:])
		n += c
		r.off = (r.off + c) % len(r.frame)
	}
	return n, nil
}

func TestParserReturnsOwnedData(t *testing.T) {
	p := NewParser(strings.NewReader("data: first\n\ndata: second\n\n"))
	a, err := p.Next()
	require.NoError(t, err)
	b, err := p.Next()
	require.NoError(t, err)
	assert.Equal(t, "first", string(a.Data), "an event's Data is not overwritten by later events")
	assert.Equal(t, "second", string(b.Data))
	assert.False(t, bytes.Equal(a.Data, b.Data))
}
