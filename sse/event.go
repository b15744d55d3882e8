package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one SSE message.
//
// The zero Event is valid: it encodes as a single "data:" line, which
// browsers dispatch as a "message" event with empty data.
type Event struct {
	// ID is written as the "id:" line and omitted when empty. It must not
	// contain CR, LF or NUL: line breaks would inject fields, and browsers
	// ignore an id that contains NUL.
	ID string
	// Event is the event name, written as the "event:" line and omitted
	// when empty (browsers then dispatch "message"). It must not contain
	// CR, LF or NUL.
	Event string
	// Data is split on CRLF, CR and LF, and only on those, into one "data:"
	// line each, so that a browser rebuilds it with every line break turned
	// into LF. Empty data is sent as one "data:" line.
	Data []byte
	// Retry, when positive, is sent as a "retry:" line in whole
	// milliseconds (truncated). Zero omits it. Negative sends "retry: 0"
	// (reconnect at once), the way http.Cookie's MaxAge < 0 sends
	// "Max-Age=0": the zero Event keeps meaning "no line". [RetryZero]
	// names that value, and the parser returns it for "retry: 0".
	Retry time.Duration
}

// RetryZero is the [Event.Retry] that writes "retry: 0". Any negative
// Retry writes the same line; [Parser] and [ParseRetryMillis] return
// exactly this value for a hint of 0.
const RetryZero time.Duration = -1

// retryMillis is the value the "retry:" line of e carries, and whether
// there is a line at all.
func (e Event) retryMillis() (int64, bool) {
	if e.Retry == 0 {
		return 0, false
	}
	return max(0, e.Retry.Milliseconds()), true
}

// ErrInvalidField is wrapped by the errors of [Event.Validate], [ValidID],
// [ValidName] and [AppendEvent] for an id or event name that contains CR,
// LF or NUL. The wrapping error names the field and quotes its value.
var ErrInvalidField = errors.New("sse: field contains CR, LF or NUL")

// ErrInvalidRetry is wrapped by the errors of [ParseRetryMillis] for a
// hint that is not an integer from 0 to [MaxRetry] milliseconds.
var ErrInvalidRetry = errors.New("sse: invalid retry")

// badFieldChars are the characters an id or event name cannot carry: CR and
// LF end the line (and would let the value inject fields), and an id with
// NUL is ignored by browsers. Event names get the same rule so that both
// single-line fields behave alike.
const badFieldChars = "\r\n\x00"

// Validate reports whether e can be encoded. It returns nil or an error
// wrapping [ErrInvalidField].
func (e Event) Validate() error {
	if err := ValidID(e.ID); err != nil {
		return err
	}
	if err := ValidName(e.Event); err != nil {
		return err
	}
	return nil
}

// ValidID applies the id rules alone, for values that arrive outside an
// [Event], such as a Last-Event-ID header. It returns nil or an error
// wrapping [ErrInvalidField].
func ValidID(id string) error {
	if strings.ContainsAny(id, badFieldChars) {
		return fmt.Errorf("%w: id %q", ErrInvalidField, id)
	}
	return nil
}

// ValidName applies the event-name rules alone. It returns nil or an error
// wrapping [ErrInvalidField].
func ValidName(name string) error {
	if strings.ContainsAny(name, badFieldChars) {
		return fmt.Errorf("%w: event %q", ErrInvalidField, name)
	}
	return nil
}

// MarshalData turns a payload into event data, the way the publish API
// promises:
//
//   - a string or a []byte is used as is (a []byte is returned without a
//     copy, so the result aliases it);
//   - a [json.RawMessage] holding a JSON string gives that string, decoded;
//     any other JSON value gives its compact form; an empty or invalid
//     RawMessage is an error;
//   - nil gives "null";
//   - anything else is JSON-encoded without HTML escaping and without a
//     trailing newline.
//
// Only the exact types string, []byte and json.RawMessage are special: a
// named string type or a [json.Number] goes through encoding/json like any
// other value. encoding/json escapes U+2028 and U+2029 in strings even with
// HTML escaping off; the result is still valid JSON and a single line.
func MarshalData(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return []byte("null"), nil
	case string:
		return []byte(v), nil
	case []byte:
		return v, nil
	case json.RawMessage:
		return marshalRaw(v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("sse: marshal data: %w", err)
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // Encode always ends with '\n'
}

// plainJSONString returns the contents of q, a quoted JSON string with no
// escape, no control character and valid UTF-8: what json.Unmarshal would
// return for it, without its decoder's allocations. Publish bodies are
// mostly such strings.
func plainJSONString(q []byte) ([]byte, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return nil, false
	}
	inner := q[1 : len(q)-1]
	for _, c := range inner {
		if c < 0x20 || c == '"' || c == '\\' {
			return nil, false
		}
	}
	return inner, utf8.Valid(inner)
}

func marshalRaw(raw json.RawMessage) ([]byte, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '"' {
		if inner, ok := plainJSONString(bytes.TrimRight(trimmed, " \t\r\n")); ok {
			return bytes.Clone(inner), nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("sse: marshal data: %w", err)
		}
		return []byte(s), nil
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("sse: marshal data: %w", err)
	}
	return buf.Bytes(), nil
}
