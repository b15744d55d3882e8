package sse

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var sizeCases = []struct {
	name string
	e    Event
}{
	{"zero", Event{}},
	{"plain", Event{ID: "42", Event: "order_update", Data: []byte(`{"a":1}`), Retry: 3 * time.Second}},
	{"lines", Event{Data: []byte("a\nb\rc\r\nd")}},
	{"empty lines", Event{Data: []byte("\n\n\r\n\r\r")}},
	{"trailing CR", Event{Data: []byte("x\r")}},
	{"retry under a ms", Event{Data: []byte("x"), Retry: time.Microsecond}},
	{"huge retry", Event{Retry: time.Duration(1<<63 - 1)}},
	{"retry zero", Event{Data: []byte("x"), Retry: RetryZero}},
	{"retry negative", Event{Data: []byte("x"), Retry: -time.Hour}},
	{"newlines", Event{ID: "1712345678901-0", Data: []byte(strings.Repeat("\n", 1000))}},
}

func TestEncodedLen(t *testing.T) {
	for _, c := range sizeCases {
		t.Run(c.name, func(t *testing.T) {
			b, err := AppendEvent(nil, c.e)
			require.NoError(t, err)
			assert.Equal(t, len(b), EncodedLen(c.e), "EncodedLen(%+v) against AppendEvent's %q", c.e, b)
		})
	}
}

// The newline expansion that makes a small body a big frame: each LF is a
// line of its own, "data:\n", six bytes.
func TestEncodedLenNewlines(t *testing.T) {
	e := Event{Data: []byte(strings.Repeat("\n", 700_000))}
	assert.Equal(t, 6*700_001+1, EncodedLen(e))
}

func TestEncodedLenDoesNotAllocate(t *testing.T) {
	e := Event{ID: "7", Event: "x", Data: []byte(strings.Repeat("line\n", 100)), Retry: time.Second}
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = EncodedLen(e) }))
}

func FuzzEncodedLen(f *testing.F) {
	for _, c := range sizeCases {
		f.Add(c.e.ID, c.e.Event, c.e.Data, int64(c.e.Retry))
	}
	f.Fuzz(func(t *testing.T, id, name string, data []byte, retry int64) {
		e := Event{ID: id, Event: name, Data: data, Retry: time.Duration(retry)}
		b, err := AppendEvent(nil, e)
		if err != nil {
			return
		}
		require.Equal(t, len(b), EncodedLen(e), "EncodedLen(%+v)", e)
	})
}
