package redisrelay

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/squall-sse/squall/actors"
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

// A refusal of the input by Publish is one the HTTP edge answers 400:
// ErrNotUTF8 and ErrInvalidChannel are actors.ErrInvalidPublish.
func TestInputErrorsAreInvalidPublish(t *testing.T) {
	assert.ErrorIs(t, ErrNotUTF8, actors.ErrInvalidPublish)
	assert.ErrorIs(t, ErrInvalidChannel, actors.ErrInvalidPublish)
	assert.ErrorIs(t, validChannel("a b"), ErrInvalidChannel)
}
