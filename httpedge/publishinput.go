package httpedge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
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
var publishFields = newFieldSet("channel", "data", "event", "id", "retry")

// batchFields are the members of an event in POST /publish/batch: those of
// a publish body, and its idempotency key.
var batchFields = newFieldSet("channel", "data", "event", "id", "retry", "idempotency_key")

// fieldSet is the members a body may have, and how an error lists them.
type fieldSet struct {
	// names maps each member to itself: looked up with the body's bytes,
	// it gives the member's name without making a string of them.
	names map[string]string
	list  string
}

func newFieldSet(names ...string) fieldSet {
	f := fieldSet{names: map[string]string{}}
	for i, n := range names {
		f.names[n] = n
		switch {
		case i == 0:
		case i == len(names)-1:
			f.list += " and "
		default:
			f.list += ", "
		}
		f.list += n
	}
	return f
}

// decoders are the publish bodies' JSON decoders, reset for each body: a
// new one is the largest allocation of a publish's parse.
var decoders = sync.Pool{New: func() any { return jsontext.NewDecoder(noBody) }}

// noBody is what a pooled decoder reads between bodies; it is never read.
var noBody = bytes.NewReader(nil)

// parsePublishBody reads a publish body in one pass, refusing what
// encoding/json would accept with a guess: invalid UTF-8 (it would replace
// it in strings, and copy it as is into a "data" object), a duplicate
// member (the last would win), a member that is not one of fields
// in exact case (encoding/json would also take "Channel" or "DATA", so
// that a body with "channel" and "Channel" would carry two channels),
// nesting deeper than MaxPublishDepth, and anything after the JSON value.
// Like encoding/json into publishBody, a null member counts as missing for
// the string fields and is kept as "null" for data and retry, and a body
// that is null sets nothing. The answer is the same in memory and cluster
// mode because it is decided here, before any publisher sees the event.
//
// It replaces a token walk followed by encoding/json over the same bytes:
// the body was tokenized twice (see bench/results/2026-12-05-issue16.md).
func parsePublishBody(raw []byte, fields fieldSet) (publishBody, error) {
	var b publishBody
	if !utf8.Valid(raw) {
		return b, errors.New("body is not valid UTF-8")
	}
	// A decoder over a bytes.Buffer reads its bytes in place, with no copy.
	d := decoders.Get().(*jsontext.Decoder)
	d.Reset(bytes.NewBuffer(raw))
	defer func() {
		d.Reset(noBody) // let go of raw
		decoders.Put(d)
	}()
	malformed := func(err error) (publishBody, error) {
		return publishBody{}, fmt.Errorf("malformed JSON body: %w", err)
	}
	tok, err := d.ReadToken()
	if err != nil {
		return malformed(err)
	}
	switch tok.Kind() {
	case 'n':
	case '{':
		for d.PeekKind() == '"' {
			quoted, err := d.ReadValue()
			if err != nil {
				return malformed(err)
			}
			var nameBuf [32]byte
			name, err := jsontext.AppendUnquote(nameBuf[:0], quoted)
			if err != nil {
				return malformed(err)
			}
			field, ok := fields.names[string(name)]
			if !ok {
				return publishBody{}, fmt.Errorf("unknown field %q: a publish body has %s", name, fields.list)
			}
			if field == "data" || field == "retry" {
				v, err := d.ReadValue()
				if err != nil {
					return malformed(err)
				}
				// The body object is the first level.
				if 1+nesting(v) > MaxPublishDepth {
					return malformed(fmt.Errorf("nested deeper than %d levels", MaxPublishDepth))
				}
				kept := json.RawMessage(bytes.Clone(v)) // v lives until the next read
				if field == "data" {
					b.Data = kept
				} else {
					b.Retry = kept
				}
				continue
			}
			v, err := d.ReadToken()
			if err != nil {
				return malformed(err)
			}
			var str *string
			switch v.Kind() {
			case 'n':
			case '"':
				s := v.String()
				str = &s
			default:
				return malformed(fmt.Errorf("%q must be a string", field))
			}
			switch field {
			case "channel":
				b.Channel = str
			case "event":
				b.Event = str
			case "id":
				b.ID = str
			case "idempotency_key":
				b.Key = str
			}
		}
		if _, err := d.ReadToken(); err != nil { // the closing '}'
			return malformed(err)
		}
	default:
		return malformed(errors.New("a publish body is a JSON object"))
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return publishBody{}, fmt.Errorf("malformed JSON body: data after the JSON value at byte %d", d.InputOffset())
	}
	return b, nil
}

// nesting is the deepest nesting of arrays and objects in v, a valid JSON
// value: 0 for a scalar.
func nesting(v []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range v {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
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
