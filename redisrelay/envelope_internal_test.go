package redisrelay

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/sse"
)

func TestDecodeEnvelope(t *testing.T) {
	tests := []struct {
		name, payload string
		want          decoded
		bad           bool
	}{
		{name: "python sdk", payload: `{"data": {"a": 1}, "event": "notice", "id": null, "retry": null}`,
			want: decoded{ev: sse.Event{Data: []byte(`{"a":1}`), Event: "notice"}}},
		{name: "squall", payload: `{"v":1,"channel":"c","pos":"17-3","id":"x","data":"d","event":null,"retry":250}`,
			want: decoded{ev: sse.Event{Data: []byte("d"), ID: "x", Retry: 250 * time.Millisecond}, pos: actors.Pos{Ms: 17, Seq: 3}}},
		{name: "string data decoded", payload: `{"data":"a\nb\u00e9"}`, want: decoded{ev: sse.Event{Data: []byte("a\nbé")}}},
		{name: "null pos is live", payload: `{"data":"x","pos":null}`, want: decoded{ev: sse.Event{Data: []byte("x")}}},
		{name: "zero retry", payload: `{"data":"x","retry":0}`, want: decoded{ev: sse.Event{Data: []byte("x"), Retry: sse.RetryZero}}},
		{name: "missing data", payload: `{"id":"1"}`, bad: true},
		{name: "array", payload: `[]`, bad: true},
		{name: "trailing garbage", payload: `{"data":1} x`, bad: true},
		{name: "retry too big", payload: `{"data":1,"retry":99999999999}`, bad: true},
		{name: "retry exponent", payload: `{"data":1,"retry":1e3}`, bad: true},
		{name: "v as string", payload: `{"data":1,"v":"1"}`, bad: true},
		{name: "id too long", payload: `{"data":1,"id":"` + strings.Repeat("x", sse.MaxID+1) + `"}`, bad: true},
		{name: "pos as number", payload: `{"data":1,"pos":17}`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEnvelope("c", []byte(tt.payload))
			if tt.bad {
				assert.ErrorIs(t, err, ErrMalformed)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// The envelope Squall builds decodes back to the event it came from.
func TestEnvelopeRoundTrip(t *testing.T) {
	events := []sse.Event{
		{Data: []byte("plain")},
		{Data: []byte{}},
		{Data: []byte("\"quoted\" \\ back\x00slash\x1f\x7f\u2028 é 😀"), Event: "e v", ID: "i\td", Retry: 1500 * time.Millisecond},
		{Data: []byte("<html>&amp;</html>")},
	}
	for _, ev := range events {
		b := appendHead(nil, "c")
		b = append(b, `"pos":"1-2","id":`...)
		b = appendJSONString(b, ev.ID)
		b = append(b, ',')
		body := appendBody(nil, ev)
		b = append(b, body[1:]...)
		require.True(t, json.Valid(b), "envelope is JSON: %s", b)
		d, err := decodeEnvelope("c", b)
		require.NoError(t, err, "%s", b)
		if len(ev.Data) == 0 {
			ev.Data = []byte{}
		}
		assert.Equal(t, ev, d.ev)
		assert.Equal(t, actors.Pos{Ms: 1, Seq: 2}, d.pos)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\x1f", "é😀\u2028", "</script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		b := appendJSONString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(b, &back), "%q encodes as %s", s, b)
		require.Equal(t, s, back)
	})
}

func TestEscapeGlob(t *testing.T) {
	assert.Equal(t, `a\*b\?c\[d\]e\\f`, escapeGlob(`a*b?c[d]e\f`))
	assert.Equal(t, "sse", escapeGlob("sse"))
}

// FuzzDecodeEnvelope feeds the relay's decoder whatever could arrive on a
// Redis channel: it never panics, and what it accepts is an event the wire
// format can send (no line injection through id or event) whose frame
// parses back to the same event.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"data":"x"}`, `{"data":{"a":1},"event":"e","id":"7","retry":10}`, `{"data":null}`,
		`{"data":"x","id":"a\nb"}`, `{"data":"x","event":"\r"}`, `{"data":"x","retry":-1}`,
		`{"data":"x","retry":1.5}`, `{"data":"x","v":2}`, `{"data":"x","pos":"1-2"}`, `{"data":"x","pos":"x"}`,
		`{"data":"x","channel":"other"}`, `[]`, `null`, `{`, `{"data":"\u0000"}`, "{\"data\":\"\xff\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		d, err := decodeEnvelope("c", []byte(payload))
		if err != nil {
			return
		}
		require.NoError(t, d.ev.Validate(), "accepted %q", payload)
		frame, err := sse.AppendEvent(nil, d.ev)
		require.NoError(t, err)
		p := sse.NewParser(strings.NewReader(string(frame)))
		got, err := p.Next()
		require.NoError(t, err, "frame %q", frame)
		require.Equal(t, d.ev.Event, got.Event)
		require.Equal(t, d.ev.ID, got.ID)
		require.Equal(t, normalizeNewlines(string(d.ev.Data)), string(got.Data))
	})
}

// normalizeNewlines is what a reader of the stream rebuilds from data
// split on CR, LF and CRLF.
func normalizeNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}
