package httpedge

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/squall-sse/squall/actors"
)

// An idle stream served the usual way holds what net/http keeps for every
// connection while its handler runs: two goroutines (the handler, parked,
// and the background read that notices the client leaving) and three
// buffers (4 KB to read, 4 KB to write, 2 KB to chunk), about 16 KB of the
// 24 it cost in all (bench suite, fanout idle phase). A stream needs none
// of it once opened: it only writes, and only needs to know when the
// client is gone. So an HTTP/1.1 stream is taken over from net/http
// (hijacked) before anything is written: its handler returns, net/http
// lets go of its buffers, and one small goroutine per stream waits on a
// read of the bare connection instead. The connection actor writes the
// response itself through a rawStream: the status line and headers on its
// first flush, then each flush as one HTTP/1.1 chunk, so the response on
// the wire is what net/http would have sent.

// rawStream is the http.ResponseWriter of a taken-over stream. Only the
// stream's connection actor writes to it, one write at a time; its write
// deadline may be moved from anywhere (net.Conn's methods are safe for
// concurrent use).
type rawStream struct {
	conn net.Conn
	// out is conn, or the connection a ConnLimiter's wraps: the limiter
	// has a say in Close only, and a broadcast's writes, one per stream,
	// each cold in the cache, skip a pointer by going around it.
	out  net.Conn
	head []byte // status line and headers, sent with the first write; then nil
}

// Header is never sent: the headers were fixed when the stream was taken
// over.
func (rs *rawStream) Header() http.Header { return http.Header{} }

// WriteHeader does nothing: the status is always 200.
func (rs *rawStream) WriteHeader(int) {}

// Write sends p as one chunk, behind the headers if they are not out yet,
// in a single write to the connection. An empty p sends only the headers
// (an empty chunk would end the response).
func (rs *rawStream) Write(p []byte) (int, error) {
	if len(p) == 0 && rs.head == nil {
		return 0, nil
	}
	bp := chunkBuffers.Get().(*[]byte)
	b := append((*bp)[:0], rs.head...)
	if len(p) > 0 {
		b = strconv.AppendInt(b, int64(len(p)), 16)
		b = append(b, "\r\n"...)
		b = append(b, p...)
		b = append(b, "\r\n"...)
	}
	_, err := rs.out.Write(b)
	// Once tried, the headers are never sent again: after a failed write
	// the stream ends.
	rs.head = nil
	if cap(b) <= maxPooledChunk {
		*bp = b
		chunkBuffers.Put(bp)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// FlushError sends the headers if nothing has been written yet; writes are
// never buffered.
func (rs *rawStream) FlushError() error {
	_, err := rs.Write(nil)
	return err
}

// SetWriteDeadline is the connection's, as http.ResponseController expects.
func (rs *rawStream) SetWriteDeadline(t time.Time) error { return rs.out.SetWriteDeadline(t) }

// maxPooledChunk is the largest chunk buffer kept for reuse: a flush of
// actors' 64 KiB bound, its final hint and the framing.
const maxPooledChunk = 80 << 10

// chunkBuffers are shared by all taken-over streams, so an idle one holds
// no buffer.
var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// endTimeout bounds the write of the last chunk of a stream that ended on
// the server's side (closed, drained, a token expired).
const endTimeout = time.Second

// takeOver hijacks the connection of r, whose headers are set on w and not
// written yet, and returns the stream's writer; nil means the stream is
// served through w as usual: HTTP/2 (which has no per-stream connection
// to take), HTTP/1.0 (no chunked encoding), a request that asked to close
// the connection (net/http would answer "Connection: close"), or a
// ResponseWriter that cannot be hijacked (wrapped by middleware, a
// recorder).
func takeOver(w http.ResponseWriter, r *http.Request) *rawStream {
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Close {
		return nil
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h := w.Header()
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Transfer-Encoding", "chunked")
	// The connection ends with the stream, so say so: a client that read a
	// stream to its clean end would otherwise put the connection back in
	// its pool and send its next request into a closed socket (a reset
	// POST, not retried: seen in TestAuthHook under load).
	h.Set("Connection", "close")
	if err := h.Write(&head); err != nil {
		return nil
	}
	head.WriteString("\r\n")
	// The bufio.ReadWriter holds net/http's read buffer and a new write
	// buffer: both are let go. Bytes the client sent after its request (a
	// pipelined one) are dropped with them; see serveTakenOver.
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.Del("Date")
		h.Del("Transfer-Encoding")
		setStreamHeaders(h, r)
		return nil
	}
	out := conn
	if lc, ok := conn.(*limitedConn); ok {
		out = lc.Conn
	}
	return &rawStream{conn: conn, out: out, head: head.Bytes()}
}

// serveTakenOver waits, on a goroutine of its own, for the stream of o to
// end, then finishes the response and closes the connection. A read that
// returns ends the stream as the client's departure: a client of an event
// stream sends nothing after its request, so a byte, an EOF and an error
// all mean it is done with this connection (net/http's own background
// read would take a byte for the start of a next request, which this
// connection will never serve).
func (s *Server) serveTakenOver(o *openStream) {
	rs := o.raw
	go func() {
		o.stream.OnDone(func() { _ = rs.conn.SetReadDeadline(time.Unix(1, 0)) })
		var b [1]byte
		_, _ = rs.conn.Read(b[:])
		o.reason = o.stream.Wait(gone)
		switch o.reason {
		case actors.ClientGone, actors.WriteTimeout, actors.SlowConsumer:
			rs.finish(false) // nobody reads, or nobody is there
		default:
			rs.finish(true)
		}
		s.closeStream(o)
	}()
}

// finish ends the response with its last chunk, if asked to and the client
// takes it within endTimeout, and closes the connection.
func (rs *rawStream) finish(last bool) {
	if last {
		_ = rs.conn.SetWriteDeadline(time.Now().Add(endTimeout))
		_, _ = rs.conn.Write(lastChunk)
	}
	_ = rs.conn.Close()
}

var lastChunk = []byte("0\r\n\r\n")

// gone is an ended context: Stream.Wait(gone) stops a stream whose client
// left and waits for its connection actor, or returns at once if the
// stream has already ended.
var gone = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
