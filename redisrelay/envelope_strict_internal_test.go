package redisrelay

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/sse"
)

// An envelope read from Redis is as strict as a publish body: what
// encoding/json would guess at (replace invalid UTF-8, take the last of
// two members, match a name in another case) is malformed, and so is an
// event name only the hub may send.
func TestDecodeEnvelopeIsStrict(t *testing.T) {
	for _, tt := range []struct{ name, payload string }{
		{"invalid UTF-8 in data", "{\"data\":\"a\xffb\"}"},
		{"invalid UTF-8 in object data", "{\"data\":{\"k\":\"\xc3\"}}"},
		{"lone surrogate escape", `{"data":"\udc00"}`},
		{"duplicate data", `{"data":"a","data":"b"}`},
		{"duplicate inside data", `{"data":{"k":1,"k":2}}`},
		{"name in another case", `{"Data":"a"}`},
		{"trailing value", `{"data":"a"}{}`},
		{"reset event", `{"data":"a","event":"reset"}`},
		{"reserved prefix", `{"data":"a","event":"squall-ctl"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeEnvelope("c", []byte(tt.payload))
			assert.ErrorIs(t, err, ErrMalformed, "decodeEnvelope(%q)", tt.payload)
		})
	}
}

// A refusal of the input by Publish is one the HTTP edge answers 400: every
// error of checkPublish is an actors.ErrInvalidPublish, and names the rule
// it broke. An event a relay reading it would refuse (an id or a retry over
// the bound) is refused before it is sent.
func TestInputErrorsAreInvalidPublish(t *testing.T) {
	assert.ErrorIs(t, ErrNotUTF8, actors.ErrInvalidPublish)
	for _, tt := range []struct {
		name, channel string
		ev            sse.Event
		rule          error
	}{
		{"bad channel", "a b", sse.Event{}, sse.ErrInvalidChannel},
		{"long channel", strings.Repeat("a", sse.MaxChannel+1), sse.Event{}, sse.ErrInvalidChannel},
		{"id with LF", "c", sse.Event{ID: "1\n2"}, sse.ErrInvalidField},
		{"data not UTF-8", "c", sse.Event{Data: []byte("\xff")}, ErrNotUTF8},
		{"id over the bound", "c", sse.Event{ID: strings.Repeat("x", sse.MaxID+1)}, nil},
		{"retry over the bound", "c", sse.Event{Retry: sse.MaxRetry + time.Millisecond}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPublish(tt.channel, tt.ev)
			require.ErrorIs(t, err, actors.ErrInvalidPublish, "checkPublish(%q, %+v)", tt.channel, tt.ev)
			if tt.rule != nil {
				assert.ErrorIs(t, err, tt.rule, "checkPublish(%q, %+v)", tt.channel, tt.ev)
			}
		})
	}
	assert.NoError(t, checkPublish(strings.Repeat("a", sse.MaxChannel), sse.Event{
		ID: strings.Repeat("x", sse.MaxID), Retry: sse.MaxRetry, Data: []byte("é"),
	}), "checkPublish at every bound")
}
