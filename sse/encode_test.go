package sse

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"raw string data", Event{Data: []byte("hello")}, "data: hello\n\n"},
		{"all fields in order", Event{ID: "42", Event: "order_update", Data: []byte(`{"a":1}`), Retry: 3 * time.Second},
			"id: 42\nevent: order_update\nretry: 3000\ndata: {\"a\":1}\n\n"},
		{"empty id and event omitted", Event{ID: "", Event: "", Data: []byte("x")}, "data: x\n\n"},
		{"multi-line LF", Event{Data: []byte("a\nb\nc")}, "data: a\ndata: b\ndata: c\n\n"},
		{"multi-line CR", Event{Data: []byte("a\rb")}, "data: a\ndata: b\n\n"},
		{"multi-line CRLF", Event{Data: []byte("a\r\nb")}, "data: a\ndata: b\n\n"},
		{"mixed line ends", Event{Data: []byte("a\r\nb\rc\nd")}, "data: a\ndata: b\ndata: c\ndata: d\n\n"},
		{"CR CRLF is two line ends", Event{Data: []byte("a\r\r\nb")}, "data: a\ndata:\ndata: b\n\n"},
		{"LF CR is two line ends", Event{Data: []byte("a\n\rb")}, "data: a\ndata:\ndata: b\n\n"},
		{"trailing newline kept", Event{Data: []byte("a\n")}, "data: a\ndata:\n\n"},
		{"trailing CRLF kept", Event{Data: []byte("a\r\n")}, "data: a\ndata:\n\n"},
		{"only a newline", Event{Data: []byte("\n")}, "data:\ndata:\n\n"},
		{"leading newline", Event{Data: []byte("\na")}, "data:\ndata: a\n\n"},
		{"nil data", Event{}, "data:\n\n"},
		{"empty data", Event{Data: []byte{}}, "data:\n\n"},
		{"leading spaces kept", Event{Data: []byte("  x")}, "data:   x\n\n"},
		{"colon in data", Event{Data: []byte("a: b")}, "data: a: b\n\n"},
		{"NUL in data", Event{Data: []byte("a\x00b")}, "data: a\x00b\n\n"},
		{"unicode separators do not split", Event{Data: []byte("a\u2028b\u2029c\u0085d\ve\ff\x1cg\x1dh\x1ei")},
			"data: a\u2028b\u2029c\u0085d\ve\ff\x1cg\x1dh\x1ei\n\n"},
		{"invalid UTF-8 sent raw", Event{Data: []byte("a\xffb")}, "data: a\xffb\n\n"},
		{"id with space and colon", Event{ID: " a: b", Data: []byte("x")}, "id:  a: b\ndata: x\n\n"},
		{"non-ASCII id and event", Event{ID: "é", Event: "ünïcode", Data: []byte("x")}, "id: é\nevent: ünïcode\ndata: x\n\n"},
		{"retry truncated to ms", Event{Retry: 1500 * time.Microsecond, Data: []byte("x")}, "retry: 1\ndata: x\n\n"},
		{"retry under 1ms is 0", Event{Retry: time.Microsecond, Data: []byte("x")}, "retry: 0\ndata: x\n\n"},
		{"zero retry omitted", Event{Retry: 0, Data: []byte("x")}, "data: x\n\n"},
		{"RetryZero writes retry: 0", Event{Retry: RetryZero, Data: []byte("x")}, "retry: 0\ndata: x\n\n"},
		{"negative retry writes retry: 0", Event{Retry: -time.Second, Data: []byte("x")}, "retry: 0\ndata: x\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendEvent([]byte("prev"), tt.ev)
			require.NoError(t, err, "AppendEvent(%+v)", tt.ev)
			assert.Equal(t, "prev"+tt.want, string(got), "AppendEvent(%+v)", tt.ev)
		})
	}
}

func TestAppendEventRejects(t *testing.T) {
	tests := []struct {
		name    string
		ev      Event
		wantErr error
		field   string
	}{
		{"id with LF", Event{ID: "1\n2"}, ErrInvalidField, "id"},
		{"id with CR", Event{ID: "1\r2"}, ErrInvalidField, "id"},
		{"id with CRLF", Event{ID: "1\r\ndata: x"}, ErrInvalidField, "id"},
		{"id with NUL", Event{ID: "1\x002"}, ErrInvalidField, "id"},
		{"event with LF", Event{Event: "a\nb"}, ErrInvalidField, "event"},
		{"event with CR", Event{Event: "a\rb"}, ErrInvalidField, "event"},
		{"event with NUL", Event{Event: "a\x00"}, ErrInvalidField, "event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ev.Data = []byte("data")
			dst := make([]byte, 3, 64)
			copy(dst, "abc")
			for i := 3; i < cap(dst); i++ {
				dst[:cap(dst)][i] = '#'
			}
			before := append([]byte(nil), dst[:cap(dst)]...)

			got, err := AppendEvent(dst, tt.ev)
			require.Error(t, err, "AppendEvent(%+v)", tt.ev)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), tt.field, "the error names the field")
			assert.Equal(t, "abc", string(got), "AppendEvent returns dst unchanged")
			assert.Equal(t, before, dst[:cap(dst)], "AppendEvent wrote nothing into dst's spare capacity")

			assert.ErrorIs(t, tt.ev.Validate(), tt.wantErr, "Validate")
		})
	}
}

func TestValidIDAndName(t *testing.T) {
	tests := []struct {
		in    string
		valid bool
	}{
		{"", true},
		{"42", true},
		{" spaced: colon ", true},
		{"é😀", true},
		{"\t\v\f", true},
		{"a\nb", false},
		{"a\rb", false},
		{"a\x00b", false},
		{"\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			idErr, nameErr := ValidID(tt.in), ValidName(tt.in)
			if tt.valid {
				assert.NoError(t, idErr, "ValidID(%q)", tt.in)
				assert.NoError(t, nameErr, "ValidName(%q)", tt.in)
				return
			}
			assert.ErrorIs(t, idErr, ErrInvalidField, "ValidID(%q)", tt.in)
			assert.ErrorIs(t, nameErr, ErrInvalidField, "ValidName(%q)", tt.in)
			assert.Contains(t, idErr.Error(), "id ")
			assert.Contains(t, nameErr.Error(), "event ")
		})
	}
	assert.NoError(t, Event{}.Validate(), "the zero Event is valid")
}

type payload struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Skip  string `json:"-"`
}

type myString string

func TestMarshalData(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"string raw", "héllo <b>&amp;", "héllo <b>&amp;"},
		{"string with newline raw", "a\nb", "a\nb"},
		{"string with U+2028 raw", "a\u2028b", "a\u2028b"},
		{"bytes raw", []byte("\x00\xff raw"), "\x00\xff raw"},
		{"empty string", "", ""},
		{"map sorted compact", map[string]any{"b": 1, "a": "<x>&"}, `{"a":"<x>&","b":1}`},
		{"struct", payload{Name: "n", Count: 2, Skip: "no"}, `{"name":"n","count":2}`},
		{"pointer to struct", &payload{Name: "p"}, `{"name":"p","count":0}`},
		{"int", 42, "42"},
		{"float", 1.5, "1.5"},
		{"bool", true, "true"},
		{"nil", nil, "null"},
		{"typed nil pointer", (*payload)(nil), "null"},
		{"slice", []int{1, 2}, "[1,2]"},
		{"HTML not escaped", map[string]string{"h": "<script>&</script>"}, `{"h":"<script>&</script>"}`},
		{"U+2028 escaped by encoding/json", map[string]string{"s": "a\u2028b"}, `{"s":"a\u2028b"}`},
		{"json.Number", json.Number("12.50"), "12.50"},
		{"named string type is JSON", myString("x"), `"x"`},
		{"raw JSON string decoded", json.RawMessage(`"a\nb \u003c"`), "a\nb <"},
		{"raw JSON string with whitespace", json.RawMessage(" \n\"x\"\t "), "x"},
		{"raw JSON object compacted", json.RawMessage("{ \"a\" : [1, 2],\n \"b\": \"<&>\" }"), `{"a":[1,2],"b":"<&>"}`},
		{"raw JSON number", json.RawMessage(" 12 "), "12"},
		{"raw JSON null", json.RawMessage("null"), "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalData(tt.in)
			require.NoError(t, err, "MarshalData(%#v)", tt.in)
			assert.Equal(t, tt.want, string(got), "MarshalData(%#v)", tt.in)
		})
	}
}

func TestMarshalDataU2028StaysOneLine(t *testing.T) {
	data, err := MarshalData("a\u2028b\u0085c")
	require.NoError(t, err)
	frame, err := AppendEvent(nil, Event{Data: data})
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(frame), "data:"), "frame %q", frame)

	ev, err := NewParser(bytes.NewReader(frame)).Next()
	require.NoError(t, err)
	assert.Equal(t, "a\u2028b\u0085c", string(ev.Data))
}

func TestMarshalDataErrors(t *testing.T) {
	tests := []struct {
		name string
		in   any
	}{
		{"raw invalid", json.RawMessage(`{"a":`)},
		{"raw empty", json.RawMessage(nil)},
		{"raw unterminated string", json.RawMessage(`"abc`)},
		{"raw two values", json.RawMessage(`"a" "b"`)},
		{"raw trailing garbage", json.RawMessage(`{} x`)},
		{"unsupported type", make(chan int)},
		{"unsupported float", map[string]float64{"x": math.Inf(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalData(tt.in)
			require.Error(t, err, "MarshalData(%#v) = %q", tt.in, got)
			assert.True(t, strings.HasPrefix(err.Error(), "sse: "), "error %q has the package prefix", err)
		})
	}
}

func TestMarshalDataBytesAlias(t *testing.T) {
	in := []byte("abc")
	got, err := MarshalData(in)
	require.NoError(t, err)
	assert.Same(t, &in[0], &got[0], "a []byte is returned without a copy")
}

func TestAppendComment(t *testing.T) {
	tests := []struct {
		name         string
		text         string
		want         string
		wantComments []string
	}{
		{"keepalive", "keepalive", ": keepalive\n\n", []string{"keepalive"}},
		{"empty", "", ":\n\n", []string{""}},
		{"LF", "a\nb", ": a\n: b\n\n", []string{"a", "b"}},
		{"CR and CRLF", "a\r\nb\rc", ": a\n: b\n: c\n\n", []string{"a", "b", "c"}},
		{"no field injection", "x\ndata: evil\n\nid: 1", ": x\n: data: evil\n:\n: id: 1\n\n", []string{"x", "data: evil", "", "id: 1"}},
		{"leading space kept", " a", ":  a\n\n", []string{" a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendComment([]byte("prev"), tt.text)
			assert.Equal(t, "prev"+tt.want, string(got), "AppendComment(%q)", tt.text)

			var comments []string
			p := NewParser(bytes.NewReader(got[len("prev"):]))
			p.Comment = func(s string) { comments = append(comments, s) }
			_, err := p.Next()
			assert.ErrorIs(t, err, io.EOF, "a comment dispatches no event")
			assert.Equal(t, tt.wantComments, comments)
			assert.Empty(t, p.LastEventID())
		})
	}
	assert.Equal(t, string(AppendComment(nil, "keepalive")), string(Keepalive), "Keepalive")
}

func TestAppendRetry(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{3 * time.Second, "retry: 3000\n\n"},
		{0, "retry: 0\n\n"},
		{1500 * time.Microsecond, "retry: 1\n\n"},
		{time.Duration(1<<63 - 1), "retry: 9223372036854\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			got := AppendRetry([]byte("prev"), tt.in)
			assert.Equal(t, "prev"+tt.want, string(got), "AppendRetry(%v)", tt.in)

			p := NewParser(bytes.NewReader(got[len("prev"):]))
			_, err := p.Next()
			assert.ErrorIs(t, err, io.EOF, "a retry block dispatches no event")
			assert.Equal(t, tt.in.Truncate(time.Millisecond), p.Retry(), "Parser.Retry after %q", got)
		})
	}
	assert.PanicsWithValue(t, "sse: AppendRetry with negative duration -1ms", func() { AppendRetry(nil, -time.Millisecond) })
}

func TestAppendEventDoesNotAllocate(t *testing.T) {
	ev := Event{ID: "12345", Event: "order_update", Data: []byte("line one\nline two\r\nline three"), Retry: time.Second}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = AppendEvent(buf[:0], ev)
		if err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs, "AppendEvent into a reused buffer")
}

// The fast path for plain JSON strings must say exactly what
// json.Unmarshal says whenever it answers.
func FuzzPlainJSONString(f *testing.F) {
	for _, s := range []string{`"hello"`, `""`, `"a\"b"`, `"a\nb"`, "\"a\x01b\"", "\"\xff\"", `"é ✓"`, `"unterminated`, `"`, `"a"b"`, `"\u00e9"`, "\"a\u2028b\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		inner, ok := plainJSONString(q)
		if !ok {
			return
		}
		var s string
		require.NoError(t, json.Unmarshal(q, &s), "plainJSONString took %q", q)
		assert.Equal(t, s, string(inner))
	})
}
