package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Default limits of a [Parser], used when its fields are zero.
const (
	DefaultMaxLineBytes  = 1 << 20 // 1 MiB
	DefaultMaxEventBytes = 8 << 20 // 8 MiB
)

// Errors that [Parser.Next] returns when the stream passes a limit. The
// parser cannot go on after them: every later call returns the same error.
var (
	ErrLineTooLong  = errors.New("sse: line too long")
	ErrEventTooLong = errors.New("sse: event data too long")
)

const (
	initialBufSize = 4 << 10
	// keepBufSize is the capacity past which the line buffer and the data
	// buffer are dropped once they are no longer needed, so that one large
	// event does not pin its memory for the life of the stream.
	keepBufSize = 64 << 10
	// maxEmptyReads matches bufio: a reader that keeps returning 0, nil is
	// broken, and looping on it forever would hang the caller.
	maxEmptyReads = 100
	maxRetryMS    = math.MaxInt64 / int64(time.Millisecond)
)

var bom = []byte{0xEF, 0xBB, 0xBF}

// Parser reads events from an event stream, following the WHATWG HTML
// algorithm "interpret an event stream" exactly, as a browser's EventSource
// does: UTF-8 decoding with U+FFFD for invalid bytes, one leading BOM
// skipped, CRLF, LF and CR as line ends, comments, the event, data, id and
// retry fields, and dispatch on a blank line.
//
// It reads incrementally: memory is bounded by its buffer of the current
// line (at most MaxLineBytes) and the data of the current event (at most
// MaxEventBytes). A line ending in CR is handled without waiting for the
// next byte, so a live stream is never delayed by one read.
//
// A Parser is not safe for concurrent use.
type Parser struct {
	// Comment, if set before the first Next, is called with the text of
	// each comment line: what follows the ':', with one leading space
	// removed (": keepalive" gives "keepalive").
	Comment func(text string)

	// MaxLineBytes bounds one line, without its line end. Zero means
	// DefaultMaxLineBytes (1 MiB); negative means no limit. Past it Next
	// returns an error wrapping ErrLineTooLong.
	MaxLineBytes int

	// MaxEventBytes bounds the data of one event (its data buffer, one LF
	// per data line included). Zero means DefaultMaxEventBytes (8 MiB);
	// negative means no limit. Past it Next returns an error wrapping
	// ErrEventTooLong.
	MaxEventBytes int

	r       io.Reader
	buf     []byte // buf[start:end] is read but not yet consumed
	start   int
	end     int
	scanned int   // bytes of buf[start:end] already searched for a line end
	readErr error // error from r, returned once buf holds no more lines
	err     error // sticky error of Next

	bomChecked bool
	skipLF     bool // the last line ended in CR at the end of buf: an LF next belongs to it

	data       []byte // the spec's data buffer
	scratch    []byte // decoded text of the current field value
	eventType  string // the spec's event type buffer
	lastType   string // the last event name seen, reused when it repeats
	lastID     string // the spec's last event ID buffer
	blockRetry time.Duration
	retry      time.Duration
}

// NewParser returns a Parser that reads the event stream from r.
func NewParser(r io.Reader) *Parser {
	return &Parser{r: r}
}

// LastEventID returns the current last-event-ID buffer: the value of the
// last id field without NUL, even one in an event not yet dispatched.
func (p *Parser) LastEventID() string { return p.lastID }

// Retry returns the reconnection time set by the last valid retry field,
// including one in a block that dispatched nothing, or 0 if none was seen.
// A retry field holds only ASCII digits (an empty value is ignored); values
// too large for a Duration are clamped.
func (p *Parser) Retry() time.Duration { return p.retry }

// Next returns the next dispatched event.
//
// The Event carries the last-event-ID buffer at dispatch time as ID (it
// persists across events), the event type as sent (empty when the block
// had no event field; callers treat "" as "message"), the data without its
// final LF, and the retry value set inside this event's block (0 if none;
// [RetryZero] for "retry: 0", as [Event.Retry] represents it).
//
// At the end of input Next returns io.EOF, dropping an incomplete last
// event. An error from the reader is returned as it is, after the events
// that were complete before it.
func (p *Parser) Next() (Event, error) {
	if p.err != nil {
		return Event{}, p.err
	}
	for {
		line, err := p.readLine()
		if err != nil {
			p.err = err
			return Event{}, err
		}
		ev, ok, err := p.processLine(line)
		if err != nil {
			p.err = err
			return Event{}, err
		}
		if ok {
			return ev, nil
		}
	}
}

func (p *Parser) maxLine() int {
	if p.MaxLineBytes == 0 {
		return DefaultMaxLineBytes
	}
	return p.MaxLineBytes
}

func (p *Parser) maxEvent() int {
	if p.MaxEventBytes == 0 {
		return DefaultMaxEventBytes
	}
	return p.MaxEventBytes
}

// readLine returns the next complete line without its line end. The slice
// points into p.buf and is valid until the next call.
func (p *Parser) readLine() ([]byte, error) {
	if len(p.buf) > keepBufSize && p.end-p.start <= initialBufSize/2 {
		// The long line that grew the buffer is done.
		small := make([]byte, initialBufSize)
		p.end = copy(small, p.buf[p.start:p.end])
		p.start, p.buf = 0, small
	}
	for {
		if p.start < p.end && p.lineStartReady() {
			pending := p.buf[p.start:p.end]
			if i := indexLineEnd(pending[p.scanned:], bytes.IndexByte); i >= 0 {
				i += p.scanned
				line := pending[:i]
				next := p.start + i + 1
				if pending[i] == '\r' {
					if next < p.end {
						if p.buf[next] == '\n' {
							next++
						}
					} else {
						p.skipLF = true
					}
				}
				p.start, p.scanned = next, 0
				if err := p.checkLine(len(line)); err != nil {
					return nil, err
				}
				return line, nil
			}
			p.scanned = len(pending)
			if err := p.checkLine(p.scanned); err != nil {
				return nil, err
			}
		}
		if p.readErr != nil {
			return nil, p.readErr
		}
		p.fill()
	}
}

// lineStartReady consumes what must be skipped before the next line (an
// LF that completes a CRLF split across reads; the BOM at the start of the
// stream) and reports whether p.buf[p.start:p.end] can be scanned for a
// line. It is false only while the buffered bytes could still be the start
// of a BOM.
func (p *Parser) lineStartReady() bool {
	if p.skipLF {
		p.skipLF = false
		if p.buf[p.start] == '\n' {
			p.start++
		}
	}
	if p.bomChecked {
		return true
	}
	pending := p.buf[p.start:p.end]
	n := min(len(pending), len(bom))
	if !bytes.Equal(pending[:n], bom[:n]) {
		p.bomChecked = true
		return true
	}
	if n == len(bom) {
		p.start += n
		p.bomChecked = true
		return true
	}
	if p.readErr != nil {
		// The stream ends inside what could have been a BOM. These bytes
		// form an unterminated line, dropped at EOF either way.
		p.bomChecked = true
		return true
	}
	return false
}

func (p *Parser) checkLine(n int) error {
	if limit := p.maxLine(); limit >= 0 && n > limit {
		return fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, limit)
	}
	return nil
}

// fill reads once more from r into p.buf, after moving the unconsumed
// bytes to its front and growing it if they fill it.
func (p *Parser) fill() {
	if p.buf == nil {
		p.buf = make([]byte, initialBufSize)
	}
	if p.start > 0 {
		n := copy(p.buf, p.buf[p.start:p.end])
		p.start, p.end = 0, n
	}
	if p.end == len(p.buf) {
		size := 2 * len(p.buf)
		if limit := p.maxLine(); limit >= 0 {
			// The buffer never needs more than the longest allowed line
			// plus one byte to see that a line is too long.
			size = min(size, limit+1)
		}
		size = max(size, len(p.buf)+1)
		bigger := make([]byte, size)
		copy(bigger, p.buf[:p.end])
		p.buf = bigger
	}
	for range maxEmptyReads {
		n, err := p.r.Read(p.buf[p.end:])
		if n < 0 || n > len(p.buf)-p.end {
			panic(fmt.Sprintf("sse: reader returned invalid count %d", n))
		}
		p.end += n
		if err != nil {
			p.readErr = err
			return
		}
		if n > 0 {
			return
		}
	}
	p.readErr = io.ErrNoProgress
}

// processLine applies one line to the parser state and reports whether it
// dispatched an event.
//
// It works on the raw bytes and decodes only field values: the characters
// that steer parsing (':', ' ', NUL, digits, the field names) are ASCII,
// and an invalid UTF-8 sequence never decodes to ASCII, so this gives the
// same result as decoding the line first.
func (p *Parser) processLine(line []byte) (Event, bool, error) {
	if len(line) == 0 {
		ev, ok := p.dispatch()
		return ev, ok, nil
	}
	if line[0] == ':' {
		if p.Comment != nil {
			p.scratch = appendDecoded(p.scratch[:0], trimSpace(line[1:]))
			p.Comment(string(p.scratch))
		}
		return Event{}, false, nil
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], trimSpace(line[i+1:])
	}
	switch string(name) {
	case "event":
		p.scratch = appendDecoded(p.scratch[:0], value)
		p.lastType = reuse(p.lastType, p.scratch)
		p.eventType = p.lastType
	case "data":
		p.data = appendDecoded(p.data, value)
		p.data = append(p.data, '\n')
		if limit := p.maxEvent(); limit >= 0 && len(p.data) > limit {
			return Event{}, false, fmt.Errorf("%w: more than %d bytes", ErrEventTooLong, limit)
		}
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.scratch = appendDecoded(p.scratch[:0], value)
			p.lastID = reuse(p.lastID, p.scratch)
		}
	case "retry":
		if d, ok := parseRetry(value); ok {
			p.retry, p.blockRetry = d, d
			if d == 0 {
				p.blockRetry = RetryZero // the block did set it: see Event.Retry
			}
		}
	}
	return Event{}, false, nil
}

// dispatch runs the spec's "dispatch the event" steps at a blank line.
func (p *Parser) dispatch() (Event, bool) {
	retry := p.blockRetry
	p.blockRetry = 0
	if len(p.data) == 0 {
		p.eventType = ""
		return Event{}, false
	}
	ev := Event{
		ID:    p.lastID,
		Event: p.eventType,
		Data:  bytes.Clone(p.data[:len(p.data)-1]), // every data field ends in LF
		Retry: retry,
	}
	p.data = p.data[:0]
	if cap(p.data) > keepBufSize {
		p.data = nil
	}
	p.eventType = ""
	return ev, true
}

func trimSpace(b []byte) []byte {
	if len(b) > 0 && b[0] == ' ' {
		return b[1:]
	}
	return b
}

// reuse returns old when it already holds b, so that the event name or id
// repeated on every event costs no allocation.
func reuse(old string, b []byte) string {
	if old == string(b) {
		return old
	}
	return string(b)
}

// parseRetry parses a retry value: one or more ASCII digits, milliseconds
// in base ten. Values too large for a Duration are clamped.
func parseRetry(b []byte) (time.Duration, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var ms int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxRetryMS {
			ms = ms*10 + int64(c-'0')
		}
	}
	ms = min(ms, maxRetryMS)
	return time.Duration(ms) * time.Millisecond, true
}
