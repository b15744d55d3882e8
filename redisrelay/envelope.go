package redisrelay

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/sse"
)

// EnvelopeVersion is the "v" Squall writes. An envelope without "v" (the
// Python SDK's) is read as version 1; any other value is refused, so that a
// future incompatible format is never half-understood.
const EnvelopeVersion = 1

var (
	// ErrMalformed is wrapped by every reason an envelope read from Redis is
	// refused.
	ErrMalformed = errors.New("redisrelay: malformed envelope")
	// ErrNotUTF8 is returned by Publish for data, an id or an event name that
	// is not valid UTF-8: the envelope is JSON, which cannot carry it
	// unchanged, and the Python SDK could not read it either. It wraps
	// actors.ErrInvalidPublish: the publisher is at fault, and the HTTP
	// edge answers 400.
	ErrNotUTF8 error = &invalidPublish{"redisrelay: not valid UTF-8"}
)

// invalidPublish is a sentinel of this package that is also an
// actors.ErrInvalidPublish, so that a caller that knows only the hub's
// errors (the HTTP edge) tells a refused input from Redis being away.
type invalidPublish struct{ msg string }

func (e *invalidPublish) Error() string { return e.msg }
func (e *invalidPublish) Unwrap() error { return actors.ErrInvalidPublish }

// rawEnvelope is an envelope as read. Every field is raw so that its JSON
// type can be checked: a wrong type is refused, never coerced.
type rawEnvelope struct {
	V       jsontext.Value `json:"v"`
	Channel jsontext.Value `json:"channel"`
	Pos     jsontext.Value `json:"pos"`
	ID      jsontext.Value `json:"id"`
	Event   jsontext.Value `json:"event"`
	Retry   jsontext.Value `json:"retry"`
	Data    jsontext.Value `json:"data"`
	// Traceparent is kept raw; only a node that traces reads it (see
	// trace.go).
	Traceparent jsontext.Value `json:"traceparent"`
}

// decoded is an envelope that passed validation.
type decoded struct {
	ev  sse.Event
	pos actors.Pos     // zero: not in the history, delivered live only
	tp  jsontext.Value // the raw "traceparent", nil when none (see trace.go)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// decodeEnvelope validates payload, published on the Redis channel of
// channel, and returns the event to deliver.
func decodeEnvelope(channel string, payload []byte) (decoded, error) {
	// encoding/json/v2 semantics: invalid UTF-8, a duplicate member name or
	// bytes after the object are refused rather than guessed at (v1 would
	// replace, take the last, or let them through), names match exactly,
	// and a string "data" of megabytes is read in one pass instead of two
	// (3 MiB: 72 ms with encoding/json, a few with this).
	var raw rawEnvelope
	if err := jsonv2.Unmarshal(payload, &raw); err != nil {
		return decoded{}, malformed("not a JSON object: %v", err)
	}
	// A present "data": null is the JSON value null, sent as "null"; only a
	// missing field is refused.
	if raw.Data == nil {
		return decoded{}, malformed(`missing "data"`)
	}
	d := decoded{tp: raw.Traceparent}
	var err error
	if raw.Data.Kind() == '"' {
		d.ev.Data, err = jsontext.AppendUnquote(nil, raw.Data)
	} else {
		d.ev.Data, err = sse.MarshalData(json.RawMessage(raw.Data))
	}
	if err != nil {
		return decoded{}, malformed(`invalid "data": %v`, err)
	}
	if !isNull(raw.V) {
		if string(raw.V) != strconv.Itoa(EnvelopeVersion) {
			return decoded{}, malformed(`unsupported "v" %s`, raw.V)
		}
	}
	if !isNull(raw.Channel) {
		var ch string
		if err := json.Unmarshal(raw.Channel, &ch); err != nil {
			return decoded{}, malformed(`"channel" is not a string`)
		}
		if ch != channel {
			return decoded{}, malformed(`"channel" %q differs from the Redis channel's %q`, ch, channel)
		}
	}
	if !isNull(raw.Pos) {
		var s string
		if err := json.Unmarshal(raw.Pos, &s); err != nil {
			return decoded{}, malformed(`"pos" is not a string`)
		}
		p, ok := actors.ParsePos(s)
		if !ok {
			return decoded{}, malformed(`"pos" %q is not a stream id`, s)
		}
		d.pos = p
	}
	if d.ev.ID, err = optString(raw.ID, "id"); err != nil {
		return decoded{}, err
	}
	if len(d.ev.ID) > sse.MaxID {
		return decoded{}, malformed(`"id" is over %d bytes`, sse.MaxID)
	}
	if d.ev.Event, err = optString(raw.Event, "event"); err != nil {
		return decoded{}, err
	}
	if actors.ReservedEvent(d.ev.Event) {
		// Only the hub sends these: a forged reset would tell clients they
		// missed events. The hub's heartbeat name is refused by the sink
		// (see checker).
		return decoded{}, malformed(`"event" %q is reserved for the hub`, d.ev.Event)
	}
	if !isNull(raw.Retry) {
		if d.ev.Retry, err = sse.ParseRetryMillis(string(raw.Retry)); err != nil {
			return decoded{}, malformed(`"retry" %s is not a non-negative integer of milliseconds`, raw.Retry)
		}
	}
	if err := d.ev.Validate(); err != nil {
		return decoded{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return d, nil
}

func isNull(raw jsontext.Value) bool { return raw == nil || string(raw) == "null" }

// optString reads a field that is a string or null; "" counts as absent.
func optString(raw jsontext.Value, name string) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", malformed("%q is not a string or null", name)
	}
	return s, nil
}

// appendHead appends the envelope's opening, up to the fields the publish
// script fills in: `{"v":1,"channel":"NAME",`.
func appendHead(dst []byte, channel string) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, EnvelopeVersion, 10)
	dst = append(dst, `,"channel":`...)
	dst = appendJSONString(dst, channel)
	return append(dst, ',')
}

// appendBody appends the event's fields other than the id, as a JSON object:
// `{"data":"...","event":"name"|null,"retry":3000|null}`. Data is always a
// JSON string of the event's bytes, which the Python SDK sends raw, like
// Squall, so both write the same frame.
func appendBody(dst []byte, ev sse.Event) []byte {
	dst = append(dst, `{"data":`...)
	dst = appendJSONString(dst, ev.Data)
	dst = append(dst, `,"event":`...)
	if ev.Event == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, ev.Event)
	}
	dst = append(dst, `,"retry":`...)
	if ev.Retry != 0 { // negative is sse.RetryZero: "retry": 0
		dst = strconv.AppendInt(dst, max(0, ev.Retry.Milliseconds()), 10)
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. s must be valid UTF-8; it is
// written as is but for the escapes JSON requires (quote, backslash and
// control characters), without HTML escaping.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// checkPublish refuses, before anything is sent, an event that no relay
// would deliver: a channel name or a field outside the wire format's rules,
// an id or a retry over the bounds a relay reading it applies ([sse.MaxID],
// [sse.MaxRetry]), bytes a JSON envelope cannot carry unchanged
// ([ErrNotUTF8]). Every refusal wraps actors.ErrInvalidPublish: the
// publisher is at fault.
func checkPublish(channel string, ev sse.Event) error {
	if err := sse.ValidChannel(channel); err != nil {
		return fmt.Errorf("%w: %w", actors.ErrInvalidPublish, err)
	}
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("%w: %w", actors.ErrInvalidPublish, err)
	}
	switch {
	case len(ev.ID) > sse.MaxID:
		return fmt.Errorf("%w: id over %d bytes", actors.ErrInvalidPublish, sse.MaxID)
	case ev.Retry > sse.MaxRetry:
		return fmt.Errorf("%w: retry over %v", actors.ErrInvalidPublish, sse.MaxRetry)
	case !utf8.Valid(ev.Data):
		return fmt.Errorf("%w: data", ErrNotUTF8)
	case !utf8.ValidString(ev.ID):
		return fmt.Errorf("%w: id", ErrNotUTF8)
	case !utf8.ValidString(ev.Event):
		return fmt.Errorf("%w: event", ErrNotUTF8)
	}
	return nil
}
