package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h). With it a
// socket bound to a source address picks its port at connect time, per
// destination, instead of reserving a port for the address alone; without
// it a few source addresses run out of ports at bind.
const ipBindAddressNoPort = 24

// errQuit ends a session that the generator closed on purpose.
var errQuit = errors.New("loadgen: stream closed by the generator")

// subConn is one SSE stream: its own goroutine reads it, reconnects it with
// Last-Event-ID when it drops, and checks what arrives.
type subConn struct {
	g      *Gen
	ch     int // channel index
	server int // index of the server it subscribes through
	src    net.IP
	stall  bool // stop reading after the first sync event
	rcvbuf int  // SO_RCVBUF, 0 for the default

	mu   sync.Mutex
	conn net.Conn
	quit bool

	drop        atomic.Bool  // the next disconnect is planned: reconnect at once
	dropAt      atomic.Int64 // unix nanos of the planned drop, 0 if none
	connected   atomic.Bool
	synced      atomic.Bool
	counted     atomic.Bool // deliveries count and must be complete
	everCounted atomic.Bool
	startSeq    atomic.Uint64
	endSeq      atomic.Uint64 // valid once ended: the stream left before the end
	ended       atomic.Bool
	unstall     chan struct{}
	done        chan struct{}

	// Owned by the reader goroutine; read by others only after it exits.
	lastID   []byte
	tr       tracker
	resets   int
	batch    int64
	stalled  bool
	cut      bool // a stalled stream that the server closed
	buf      []byte
	sessions int
}

func (c *subConn) setConn(nc net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quit {
		return false
	}
	c.conn = nc
	return true
}

// close ends the stream for good.
func (c *subConn) close() {
	c.mu.Lock()
	c.quit = true
	if c.conn != nil {
		c.conn.Close()
	}
	c.mu.Unlock()
}

// dropNow closes the current connection; the reader resumes with
// Last-Event-ID at once.
func (c *subConn) dropNow(at int64) {
	c.dropAt.Store(at)
	c.drop.Store(true)
	c.mu.Lock()
	if c.conn != nil {
		c.conn.Close()
	}
	c.mu.Unlock()
}

func (c *subConn) loop(ctx context.Context) {
	defer c.g.wg.Done()
	defer close(c.done)
	backoff := 20 * time.Millisecond
	for {
		err := c.session(ctx)
		c.mu.Lock()
		quit := c.quit
		c.conn = nil
		c.mu.Unlock()
		if c.stall && c.stalled {
			// The stream was released after its stall: whatever ended the
			// read tells whether the server had cut it.
			c.cut = !isTimeout(err)
			return
		}
		if quit || ctx.Err() != nil {
			return
		}
		c.g.noteConnErr(err)
		if c.drop.Swap(false) {
			backoff = 20 * time.Millisecond
			continue
		}
		if c.connected.Load() {
			c.g.disconnects.Add(1)
		} else {
			c.g.dialErrors.Add(1)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func (c *subConn) dialer() *net.Dialer {
	rcvbuf := c.rcvbuf
	return &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: c.src},
		Timeout:   10 * time.Second,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
				if serr == nil && rcvbuf > 0 {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// session runs one connection: dial, request, read until it ends.
func (c *subConn) session(ctx context.Context) error {
	g := c.g
	select {
	case g.dialSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	released := false
	release := func() {
		if !released {
			released = true
			<-g.dialSem
		}
	}
	defer release()

	srv := g.servers[c.server]
	nc, err := c.dialer().DialContext(ctx, "tcp", srv.hostport)
	if err != nil {
		return fmt.Errorf("loadgen: dial %s: %w", srv.hostport, err)
	}
	if !c.setConn(nc) {
		nc.Close()
		return errQuit
	}
	defer nc.Close()
	c.sessions++

	req := make([]byte, 0, 256)
	req = append(req, "GET /events?channel="...)
	req = append(req, g.chNames[c.ch]...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, srv.hostport...)
	req = append(req, "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"...)
	if len(c.lastID) > 0 {
		req = append(req, "Last-Event-ID: "...)
		req = append(req, c.lastID...)
		req = append(req, "\r\n"...)
	}
	req = append(req, "\r\n"...)
	if _, err := nc.Write(req); err != nil {
		return fmt.Errorf("loadgen: write request: %w", err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("loadgen: read response: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("loadgen: GET /events: %s: %s", resp.Status, b)
	}
	release()
	if at := c.dropAt.Swap(0); at != 0 {
		g.reconnectHist.Record(time.Now().UnixNano() - at)
		g.reconnected.Add(1)
	}
	if !c.connected.Swap(true) {
		g.connected.Add(1)
	}
	sc := newScanner(resp.Body, c.buf)
	err = sc.run(c.handle, c.flushBatch)
	c.buf = sc.buf
	c.flushBatch()
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("loadgen: stream ended: %w", io.EOF)
	}
	return err
}

func (c *subConn) flushBatch() {
	if c.batch > 0 {
		c.g.reads.Add(1)
		c.g.delivered.Add(c.batch)
		c.batch = 0
	}
}

func (c *subConn) handle(ev *sseEvent, now int64) {
	if ev.hasID {
		c.lastID = append(c.lastID[:0], ev.id...)
	}
	if !ev.hasData {
		return
	}
	if string(ev.event) == "reset" {
		c.resets++
		c.g.resets.Add(1)
		return
	}
	kind, seq, ts, _, ok := parsePayload(ev.data)
	if !ok {
		c.g.badPayload.Add(1)
		return
	}
	switch kind {
	case kindSync:
		if !c.synced.Load() {
			c.synced.Store(true)
			c.g.synced.Add(1)
		}
		if c.stall && !c.stalled {
			c.stalled = true
			<-c.unstall
			c.mu.Lock()
			if c.conn != nil {
				c.conn.SetReadDeadline(time.Now().Add(c.g.cfg.CutWait))
			}
			c.mu.Unlock()
		}
	case kindMeasure:
		if !c.counted.Load() {
			return
		}
		if !c.tr.started {
			c.tr.start(c.startSeq.Load())
		}
		if c.tr.add(seq) {
			c.batch++
			c.g.hist.Load().record(c.ch, now-ts)
		} else {
			c.g.dups.Add(1)
		}
	}
}
