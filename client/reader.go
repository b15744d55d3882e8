package client

import (
	"bytes"
	"io"
	"time"
)

var bom = []byte{0xEF, 0xBB, 0xBF}

// maxEmptyReads matches bufio: a reader that keeps returning 0, nil is
// broken, and waiting on it forever would hang Next.
const maxEmptyReads = 100

// seedReader gives the parser "id: LAST\n" before the body.
//
// A browser's EventSource keeps its last event ID across reconnections; a
// new [sse.Parser] starts empty. The seed line sets the new parser's
// last-event-ID buffer without dispatching anything, so that events of the
// new connection that carry no id field still report the resume point,
// and the next reconnection still sends it.
//
// The parser skips a BOM only at the very start of its input; behind the
// seed line, the body's BOM would become part of the first field name and
// lose that field. So a leading BOM of the body is dropped here.
type seedReader struct {
	pending []byte // the seed line, then the body bytes read to look for a BOM
	body    io.Reader
	err     error // the body's error met while looking for a BOM
	checked bool
}

func newSeedReader(lastID string, body io.Reader) *seedReader {
	seed := make([]byte, 0, len("id: \n")+len(lastID)+len(bom))
	seed = append(seed, "id: "...)
	seed = append(seed, lastID...)
	seed = append(seed, '\n')
	return &seedReader{pending: seed, body: body}
}

func (r *seedReader) Read(p []byte) (int, error) {
	if !r.checked {
		r.checkBOM()
	}
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	return r.body.Read(p)
}

// checkBOM reads from the body only while what it has read could still be
// a BOM: one read in practice, since a stream starts with ':' or a field
// name.
func (r *seedReader) checkBOM() {
	r.checked = true
	var head [3]byte
	n := 0
	for range maxEmptyReads {
		m, err := r.body.Read(head[n:])
		n += m
		if err != nil {
			r.err = err
			break
		}
		if n == len(head) || !bytes.Equal(head[:n], bom[:n]) {
			break
		}
	}
	if n == 0 && r.err == nil {
		r.err = io.ErrNoProgress
	}
	if bytes.Equal(head[:n], bom) {
		n = 0
	}
	r.pending = append(r.pending, head[:n]...)
}

// idleReader runs the idle timer only while a read waits, so that a slow
// caller between two calls to Next is not taken for a silent server. The
// timer cancels the connection when it fires.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	r.timer.Reset(r.d)
	n, err := r.r.Read(p)
	r.timer.Stop()
	return n, err
}
