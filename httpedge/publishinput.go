package httpedge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/squall-sse/squall/actors"
)

// MaxPublishDepth bounds the nesting of a publish body, in JSON arrays and
// objects, the body object itself included: "data" may nest 63 levels.
// Deeper bodies are refused (400): real payloads stay far below, and the
// bound keeps a body from costing more to decode than to carry.
const MaxPublishDepth = 64

// publishFields are the members of a publish body, matched exactly:
// encoding/json alone would also take "Channel" or "DATA", so that a body
// with "channel" and "Channel" would carry two channels.
var publishFields = map[string]bool{"channel": true, "data": true, "event": true, "id": true, "retry": true}

// strictBody refuses a publish body that encoding/json would accept with a
// guess: invalid UTF-8 (it would replace it in strings, and copy it as is
// into a "data" object), a duplicate member (the last would win), a member
// that is not one of publishFields in exact case, nesting deeper than
// MaxPublishDepth, and anything after the JSON value (json.Decoder.More is
// false before a "}", so `{"channel":"a","data":1}}` passed). The answer is
// the same in memory and cluster mode because it is decided here, before
// any publisher sees the event.
func strictBody(raw []byte) error {
	if !utf8.Valid(raw) {
		return errors.New("body is not valid UTF-8")
	}
	d := jsontext.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := d.ReadToken()
		if err != nil {
			return fmt.Errorf("malformed JSON body: %w", err)
		}
		depth := d.StackDepth()
		if depth > MaxPublishDepth {
			return fmt.Errorf("malformed JSON body: nested deeper than %d levels", MaxPublishDepth)
		}
		if depth == 1 && tok.Kind() == '"' {
			// A string at the top of an object with an odd count read is a
			// member name.
			if kind, n := d.StackIndex(1); kind == '{' && n%2 == 1 && !publishFields[tok.String()] {
				return fmt.Errorf("unknown field %q: a publish body has channel, data, event, id and retry", tok.String())
			}
		}
		if depth == 0 {
			break
		}
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return fmt.Errorf("malformed JSON body: data after the JSON value at byte %d", d.InputOffset())
	}
	return nil
}

// publishRefusal maps a publisher's error for an event that was certainly
// not taken because of the event itself (actors.ErrInvalidPublish: 400,
// actors.ErrEventTooLarge: 413). A client mistake must never be a 503,
// which a retrying publisher would repeat forever.
func publishRefusal(err error) (int, bool) {
	switch {
	case errors.Is(err, actors.ErrEventTooLarge):
		return http.StatusRequestEntityTooLarge, true
	case errors.Is(err, actors.ErrInvalidPublish):
		return http.StatusBadRequest, true
	}
	return 0, false
}
