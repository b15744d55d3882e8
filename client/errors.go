package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/squall-sse/squall/sse"
)

var (
	// ErrClosed is returned by Next after [Stream.Close], and by a Next
	// that Close interrupted.
	ErrClosed = errors.New("client: stream closed")

	// ErrNoContent ends a Stream whose server answered 204 No Content: the
	// HTML spec's way for a server to tell an EventSource to stop
	// reconnecting.
	ErrNoContent = errors.New("client: server answered 204 No Content, not reconnecting")

	// ErrContentType ends a Stream whose server answered 200 with a
	// Content-Type other than text/event-stream. The HTML spec fails the
	// connection then, without reconnecting: the URL is not an event stream.
	ErrContentType = errors.New("client: response is not text/event-stream")

	// ErrGaveUp ends a Stream after Config.MaxAttempts consecutive failed
	// attempts. The error that wraps it also wraps the last failure.
	ErrGaveUp = errors.New("client: too many failed attempts")

	// ErrIdleTimeout is the [DisconnectInfo.Err] of a connection closed
	// because nothing arrived within Config.IdleTimeout. The Stream
	// reconnects.
	ErrIdleTimeout = errors.New("client: no data within the idle timeout")

	// ErrToken wraps the failure of Config.Token, and a token it returned
	// that cannot be sent.
	ErrToken = errors.New("client: token source")
)

// MaxTokenBytes bounds a token from Config.Token.
const MaxTokenBytes = 16 << 10

// errBadToken marks a token that can never be sent: the Stream ends.
var errBadToken = errors.New("invalid token")

// checkToken accepts an RFC 6750 b64token: letters, digits, "-._~+/",
// then any "=" padding. Anything else could split the header.
func checkToken(tok string) error {
	if tok == "" || len(tok) > MaxTokenBytes {
		return fmt.Errorf("%w: %w: want 1 to %d bytes, got %d", ErrToken, errBadToken, MaxTokenBytes, len(tok))
	}
	body := strings.TrimRight(tok, "=")
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return fmt.Errorf("%w: %w: byte %d is %q, not a token character", ErrToken, errBadToken, i, c)
		}
	}
	if body == "" {
		return fmt.Errorf("%w: %w: only padding", ErrToken, errBadToken)
	}
	return nil
}

// errInterrupted is the cancel cause of a connection that the caller's
// context interrupted; Next reports the context's own error instead.
var errInterrupted = errors.New("client: interrupted by the caller's context")

// StatusError is the error of a response other than 200 and 204.
//
// Statuses 408, 429 and 5xx are retried (the error then only shows in
// [DisconnectInfo.Err]); any other one ends the Stream, and Next returns
// it.
type StatusError struct {
	// StatusCode is the HTTP status, 401 for example.
	StatusCode int
	// Reason is the server's explanation: the "error" member of a JSON
	// body like {"error": "token expired"}, else the start of the body as
	// text, else "".
	Reason string
	// RetryAfter is the response's Retry-After, 0 if absent or invalid.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := "client: server answered " + strconv.Itoa(e.StatusCode)
	if text := http.StatusText(e.StatusCode); text != "" {
		msg += " " + text
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Retryable reports whether the status is one the Stream retries: 408
// Request Timeout, 429 Too Many Requests and every 5xx.
func (e *StatusError) Retryable() bool {
	return e.StatusCode == http.StatusRequestTimeout ||
		e.StatusCode == http.StatusTooManyRequests ||
		(e.StatusCode >= 500 && e.StatusCode <= 599)
}

const (
	// maxReasonBody bounds how much of an error body is read for its
	// reason; the rest is dropped with the connection.
	maxReasonBody = 4 << 10
	// maxReasonText bounds a reason taken from a body that is not JSON,
	// which could be a whole HTML error page.
	maxReasonText = 200
)

// statusError builds the error of a non-200 response, reading at most
// maxReasonBody bytes of its body.
func statusError(resp *http.Response, now time.Time) *StatusError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReasonBody))
	return &StatusError{
		StatusCode: resp.StatusCode,
		Reason:     reason(body),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now),
	}
}

func reason(body []byte) string {
	var msg struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &msg) == nil && msg.Error != "" {
		return msg.Error
	}
	text := strings.ToValidUTF8(string(bytes.TrimSpace(body)), "\uFFFD")
	if len(text) > maxReasonText {
		cut := maxReasonText
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "..."
	}
	return text
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP-date
// (RFC 9110, section 10.2.3). It returns 0 for an absent, invalid or past
// value.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// checkResponse classifies a response: nil for an event stream, else the
// error that fails the attempt.
func checkResponse(resp *http.Response, now time.Time) error {
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return ErrNoContent
	default:
		// The HTML spec accepts only 200; other 2xx fail the connection
		// like any other status.
		return statusError(resp, now)
	}
	ct := resp.Header.Get("Content-Type")
	if !isEventStream(ct) {
		return fmt.Errorf("%w: got Content-Type %q", ErrContentType, ct)
	}
	return nil
}

// isEventStream compares the essence of a MIME type (type/subtype,
// case-insensitive, parameters ignored), as the spec does.
func isEventStream(ct string) bool {
	essence, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(essence), "text/event-stream")
}

// final reports whether err ends the Stream whatever the retry policy.
func final(err error) bool {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return !se.Retryable()
	case errors.Is(err, ErrNoContent), errors.Is(err, ErrContentType), errors.Is(err, errBadToken),
		errors.Is(err, sse.ErrEventTooLong), errors.Is(err, sse.ErrLineTooLong):
		return true
	}
	return false
}

// unauthorized reports whether err is a 401 answer.
func unauthorized(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.StatusCode == http.StatusUnauthorized
}

// retryAfterOf returns the Retry-After that err carries, if any.
func retryAfterOf(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// hideURL drops the URL that net/http puts in its errors: a subscribe URL
// may carry an access_token in its query, and errors end up in logs.
func hideURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("client: %s request: %w", ue.Op, ue.Err)
	}
	return err
}
