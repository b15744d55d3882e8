package loadgen

import (
	"bytes"
	"errors"
	"io"
	"time"
)

// errLineTooLong stops a stream whose line outgrows maxLine: no server
// under test sends one, so it means a broken stream.
var errLineTooLong = errors.New("loadgen: SSE line too long")

const (
	scanBufSize = 8 << 10
	maxLine     = 1 << 20
)

// sseEvent is one dispatched event. Its slices point into buffers that the
// scanner reuses for the next event.
type sseEvent struct {
	id      []byte
	hasID   bool
	event   []byte
	data    []byte
	hasData bool
}

// scanner is the generator's SSE reader: lighter than the spec parser in
// package sse (no per-event allocation, one clock reading per read for
// every event it completes) and exact for what the servers under test send:
// lines ending in LF or CRLF, fields "id", "event", "data", comments. Tests
// check it against package sse on the same bytes.
type scanner struct {
	r    io.Reader
	buf  []byte
	r0   int // start of unread bytes
	w    int // end of unread bytes
	cur  sseEvent
	data []byte // the event's data lines, joined by LF
}

func newScanner(r io.Reader, buf []byte) *scanner {
	if cap(buf) < scanBufSize {
		buf = make([]byte, scanBufSize)
	}
	return &scanner{r: r, buf: buf[:cap(buf)]}
}

// run reads until r fails and returns that error. It calls emit for each
// event, with the time of the read that completed it in Unix nanoseconds,
// and batch once after the events of each read.
func (s *scanner) run(emit func(ev *sseEvent, now int64), batch func()) error {
	for {
		if s.w == len(s.buf) {
			if s.r0 > 0 {
				s.w = copy(s.buf, s.buf[s.r0:s.w])
				s.r0 = 0
			} else {
				if len(s.buf) >= maxLine {
					return errLineTooLong
				}
				nb := make([]byte, 2*len(s.buf))
				s.w = copy(nb, s.buf[s.r0:s.w])
				s.r0 = 0
				s.buf = nb
			}
		}
		n, err := s.r.Read(s.buf[s.w:])
		if n > 0 {
			s.w += n
			s.lines(emit, time.Now().UnixNano())
			batch()
		}
		if err != nil {
			return err
		}
	}
}

func (s *scanner) lines(emit func(*sseEvent, int64), now int64) {
	for {
		i := bytes.IndexByte(s.buf[s.r0:s.w], '\n')
		if i < 0 {
			if s.r0 == s.w {
				s.r0, s.w = 0, 0
			}
			return
		}
		line := s.buf[s.r0 : s.r0+i]
		s.r0 += i + 1
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		s.line(line, emit, now)
	}
}

func (s *scanner) line(line []byte, emit func(*sseEvent, int64), now int64) {
	if len(line) == 0 {
		// A blank line dispatches. The spec applies an id even to an event
		// without data, so such an event is emitted for its id alone.
		if s.cur.hasID || s.cur.hasData {
			s.cur.data = s.data
			emit(&s.cur, now)
		}
		s.cur.hasID, s.cur.hasData = false, false
		s.cur.event = s.cur.event[:0]
		s.data = s.data[:0]
		return
	}
	if line[0] == ':' {
		return
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		if s.cur.hasData {
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, value...)
		s.cur.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			s.cur.id = append(s.cur.id[:0], value...)
			s.cur.hasID = true
		}
	case "event":
		s.cur.event = append(s.cur.event[:0], value...)
	}
}
