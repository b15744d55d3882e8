package sse

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// Keepalive is the pre-encoded heartbeat comment ": keepalive\n\n". It is
// shared by every stream; do not modify it.
var Keepalive = []byte(": keepalive\n\n")

// AppendEvent validates e and appends its frame to dst: the "id:",
// "event:" and "retry:" lines when set, then one "data:" line per line of
// e.Data, then the blank line that makes the browser dispatch it. Data
// lines are "data: LINE\n", or "data:\n" for an empty line. On error dst
// is returned unchanged.
//
// Appending into a reused buffer does not allocate.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, err
	}
	if e.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, e.ID...)
		dst = append(dst, '\n')
	}
	if e.Event != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, e.Event...)
		dst = append(dst, '\n')
	}
	if ms, ok := e.retryMillis(); ok {
		dst = appendRetryLine(dst, ms)
	}
	dst = appendLines(dst, "data", e.Data, bytes.IndexByte)
	return append(dst, '\n'), nil
}

// AppendComment appends text as a comment block: ": text\n" and a blank
// line. Browsers never see comments; they keep idle connections alive. A
// text with CR, LF or CRLF becomes one comment line per line, so it cannot
// inject fields.
func AppendComment(dst []byte, text string) []byte {
	dst = appendLines(dst, "", text, strings.IndexByte)
	return append(dst, '\n')
}

// AppendRetry appends a block that only sets the client's reconnection
// time: "retry: N\n\n", N in whole milliseconds (truncated). The block
// dispatches no event. It panics if d is negative, which is a programming
// error: validate configured values where they are read.
func AppendRetry(dst []byte, d time.Duration) []byte {
	if d < 0 {
		panic("sse: AppendRetry with negative duration " + d.String())
	}
	dst = appendRetryLine(dst, d.Milliseconds())
	return append(dst, '\n')
}

func appendRetryLine(dst []byte, ms int64) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, '\n')
}

// appendLines writes one "name: line\n" per line of text, splitting on
// CRLF, CR and LF, the three line ends of the event-stream grammar. An
// empty line is written "name:\n" (a comment when name is empty). Empty
// text still gives one line, so empty data is still dispatched.
func appendLines[T string | []byte](dst []byte, name string, text T, indexByte func(T, byte) int) []byte {
	for {
		i := indexLineEnd(text, indexByte)
		line := text
		if i >= 0 {
			line = text[:i]
		}
		dst = append(dst, name...)
		dst = append(dst, ':')
		if len(line) > 0 {
			dst = append(dst, ' ')
			dst = append(dst, line...)
		}
		dst = append(dst, '\n')
		if i < 0 {
			return dst
		}
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
}

// indexLineEnd returns the index of the first CR or LF in s, or -1. It
// leans on the vectorised IndexByte: the search for CR stops at the first
// LF, so a text is scanned about twice in all, however many lines it has.
func indexLineEnd[T string | []byte](s T, indexByte func(T, byte) int) int {
	i := indexByte(s, '\n')
	head := s
	if i >= 0 {
		head = s[:i]
	}
	if j := indexByte(head, '\r'); j >= 0 {
		return j
	}
	return i
}
