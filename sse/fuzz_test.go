package sse

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browserText is what a browser makes of bytes sent in a field value: the
// WHATWG UTF-8 decode (U+FFFD for invalid sequences). Invalid UTF-8 is not
// excluded from the round trip: it is compared after this replacement,
// which appendDecoded implements and TestAppendDecoded and FuzzDecodeUTF8
// check against an independent oracle.
func browserText(b []byte) string { return string(appendDecoded(nil, b)) }

// browserData is browserText with every line end turned into LF, as the
// browser rebuilds multi-line data.
func browserData(b []byte) string {
	s := browserText(b)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// FuzzRoundTrip encodes any Event, parses it back the way a browser would
// and checks that nothing was lost or injected. The stream also holds the
// data as a comment and a retry block, which must dispatch nothing.
func FuzzRoundTrip(f *testing.F) {
	seeds := []struct {
		id, event, data string
		retry           time.Duration
	}{
		{"", "", "", 0},
		{"42", "order_update", `{"orderId":"abc","status":"paid"}`, 3 * time.Second},
		{"1", "", "a\nb\rc\r\nd", 0},
		{"", "x", "trailing\n", time.Microsecond},
		{" lead", " ev", "  two spaces", time.Millisecond},
		{"é", "😀", "a\u2028b\u0085c\vd\fe\x1cf", 0},
		{"\xff", "\xE2\x82", "a\xffb\xF0\x9F\x98", 0},
		{"", "", "\r\n\r\n", 0},
		{"", "", "\x00", 0},
		{"data: x", "id: 7", "event: y\nid: 9\nretry: 1\n\ndata: z", 0},
		{"bad\n", "", "x", 0},
		{"", "bad\x00", "x", 0},
		{"", "", "x", -time.Second},
		{"", "", "x", RetryZero},
		{"0", "reset", "retry zero", -1},
		{"", "", "x", time.Duration(1<<63 - 1)},
		{"\xEF\xBB\xBF", "", "\xEF\xBB\xBF", 0},
	}
	for _, s := range seeds {
		f.Add(s.id, s.event, []byte(s.data), int64(s.retry))
	}
	f.Fuzz(func(t *testing.T, id, name string, data []byte, retry int64) {
		e := Event{ID: id, Event: name, Data: data, Retry: time.Duration(retry)}
		prefix := []byte("prefix")
		frame, err := AppendEvent(prefix, e)
		if verr := e.Validate(); verr != nil {
			require.Error(t, err, "AppendEvent(%+v) must fail like Validate: %v", e, verr)
			assert.Equal(t, "prefix", string(frame), "AppendEvent leaves dst unchanged on error")
			return
		}
		require.NoError(t, err, "AppendEvent(%+v)", e)
		frame = frame[len(prefix):]

		const between = 1500 * time.Millisecond
		var stream []byte
		stream = append(stream, frame...)
		stream = AppendComment(stream, string(data))
		stream = AppendRetry(stream, between)
		stream = append(stream, frame...)

		want := ev{
			ID:    browserText([]byte(id)),
			Event: browserText([]byte(name)),
			Data:  browserData(data),
		}
		// A negative Retry, and a positive one under a millisecond, write
		// "retry: 0", which parses back as RetryZero; the stream's own
		// reconnection time is then 0.
		wantRetry := between
		if e.Retry != 0 {
			wantRetry = max(0, e.Retry.Truncate(time.Millisecond))
			want.Retry = wantRetry
			if wantRetry == 0 {
				want.Retry = RetryZero
			}
		}

		got := parseAll(bytes.NewReader(stream), nil)
		require.ErrorIs(t, got.err, io.EOF, "parsing %q", stream)
		assert.Equal(t, []ev{want, want}, got.events, "events of %q", stream)
		assert.Equal(t, want.ID, got.lastID, "LastEventID after %q", stream)
		assert.Equal(t, wantRetry, got.retry, "Retry after %q", stream)
		assert.Equal(t, strings.Split(browserData(data), "\n"), got.comments, "comments of %q", stream)
	})
}

// twoReads delivers its input in exactly two Reads.
type twoReads struct{ parts [][]byte }

func (r *twoReads) Read(b []byte) (int, error) {
	for len(r.parts) > 0 && len(r.parts[0]) == 0 {
		r.parts = r.parts[1:]
	}
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(b, r.parts[0])
	r.parts[0] = r.parts[0][n:]
	return n, nil
}

// FuzzParserSplit checks that the parser never panics, that the events,
// last-event-ID, retry and comments do not depend on how the input is cut
// into Reads, and that they match refParse, a literal transcription of the
// spec that decodes the whole input first.
func FuzzParserSplit(f *testing.F) {
	seeds := []string{
		"",
		"data: test\n\ndata:test\n\n",
		"data\n\ndata\ndata\n\ndata:",
		"data: YHOO\ndata: +2\ndata: 10\n\n",
		": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
		"\xEF\xBB\xBFdata: x\n\n",
		"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n",
		"\xEF\xBBdata: x\n\n",
		"data: a\rdata: b\r\r",
		"data: a\r\ndata: b\r\n\r\n",
		"data: a\r\n\rdata: b\n\r\ndata: c\r\n",
		"retry: 1000\ndata: x\n\nretry: 10x\nretry:\nretry: 99999999999999999999999\n\n",
		"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\nid\ndata: c\n\n",
		"event: a\n\ndata: 2\n\nfoo: bar\ndata\n\n",
		": keepalive\n\n:  x\n:\n",
		"id: \xff\nevent: \xE2\x82\ndata: a\xffb\xF0\x9F\x98\n\n",
		"data: a\x00b\n\ndata: \xEF\xBB\xBFx\n\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint(i*7))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		want := refParse(in)
		k := int(split % uint(len(in)+1))

		readers := []struct {
			name string
			r    io.Reader
		}{
			{"whole", bytes.NewReader(in)},
			{"split at " + strconv.Itoa(k), &twoReads{parts: [][]byte{in[:k:k], in[k:]}}},
			{"one byte", iotest.OneByteReader(bytes.NewReader(in))},
			{"half", iotest.HalfReader(bytes.NewReader(in))},
			{"data with EOF", iotest.DataErrReader(bytes.NewReader(in))},
		}
		for _, r := range readers {
			got := parseAll(r.r, nil)
			require.ErrorIs(t, got.err, io.EOF, "%s: final error for %q", r.name, in)
			assert.Equal(t, want, got, "%s: parsing %q", r.name, in)
		}

		// With small limits the result may be an error, but it must be the
		// same error after the same events whatever the reads.
		limited := func(p *Parser) { p.MaxLineBytes, p.MaxEventBytes = 16, 24 }
		whole := parseAll(bytes.NewReader(in), limited)
		for _, r := range []io.Reader{
			&twoReads{parts: [][]byte{in[:k:k], in[k:]}},
			iotest.OneByteReader(bytes.NewReader(in)),
		} {
			got := parseAll(r, limited)
			assert.Equal(t, whole.events, got.events, "limited, split at %d: events of %q", k, in)
			assert.Equal(t, whole.comments, got.comments, "limited, split at %d: comments of %q", k, in)
			assert.Equal(t, whole.err, got.err, "limited, split at %d: error for %q", k, in)
		}
	})
}

// refParse transcribes the WHATWG "interpret an event stream" steps as
// literally as possible, on the whole input at once: decode (skipping one
// BOM), split into lines, process each line.
func refParse(in []byte) parsed {
	var out parsed
	s := browserText(bytes.TrimPrefix(in, []byte("\xEF\xBB\xBF")))
	var data strings.Builder
	var eventType string
	var blockRetry time.Duration
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			break // an unterminated line at the end is discarded
		}
		line := s[:i]
		if strings.HasPrefix(s[i:], "\r\n") {
			s = s[i+2:]
		} else {
			s = s[i+1:]
		}
		switch {
		case line == "":
			// Dispatch the event.
			retry := blockRetry
			blockRetry = 0
			if data.Len() == 0 {
				eventType = ""
				continue
			}
			d := strings.TrimSuffix(data.String(), "\n")
			out.events = append(out.events, ev{ID: out.lastID, Event: eventType, Data: d, Retry: retry})
			data.Reset()
			eventType = ""
		case line[0] == ':':
			out.comments = append(out.comments, strings.TrimPrefix(line[1:], " "))
		default:
			field, value, found := strings.Cut(line, ":")
			if found {
				value = strings.TrimPrefix(value, " ")
			}
			switch field {
			case "event":
				eventType = value
			case "data":
				data.WriteString(value)
				data.WriteByte('\n')
			case "id":
				if !strings.Contains(value, "\x00") {
					out.lastID = value
				}
			case "retry":
				if value != "" && strings.Trim(value, "0123456789") == "" {
					ms, err := strconv.ParseInt(value, 10, 64)
					if err != nil || ms > maxRetryMS {
						ms = maxRetryMS // out of range: clamped
					}
					out.retry = time.Duration(ms) * time.Millisecond
					blockRetry = out.retry
					if ms == 0 {
						blockRetry = RetryZero // Event.Retry's "retry: 0"
					}
				}
			}
		}
	}
	out.err = io.EOF
	return out
}
