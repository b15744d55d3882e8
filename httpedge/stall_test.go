package httpedge_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

// smallSendBuffers makes the server's sockets buffer little, so that a
// client that stops reading blocks the server's writes after a few KB
// instead of after the megabytes the kernel would otherwise absorb.
func smallSendBuffers(srv *httptest.Server) {
	srv.Listener = sndbufListener{srv.Listener}
}

type sndbufListener struct{ net.Listener }

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, nil
}

// dialStalled opens a stream over a socket with a tiny receive buffer and
// never reads past the response headers: a client that stopped reading.
// Each of headers is a "Name: value" line sent with the request.
func dialStalled(t *testing.T, addr, path string, headers ...string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	var extra strings.Builder
	for _, h := range headers {
		extra.WriteString(h + "\r\n")
	}
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra.String())
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return conn
}

// TestManyStalledWritersHoldUpNoOne stalls more clients on a channel than
// a hub keeps workers, so that a broadcast leaves every worker that took a
// stalled stream's turn blocked in its write, with turns still queued
// behind them: the readers who keep up must get every event all the same,
// each within the usual wait (the stalled writes last minutes).
func TestManyStalledWritersHoldUpNoOne(t *testing.T) {
	const (
		stalled = 300 // over the 128 workers a hub keeps idle
		events  = 8
		size    = 16 << 10 // a few events fill a stalled socket's buffers
	)
	s := newHubServer(t, actors.Config{Overflow: actors.DropOldest, WriteTimeout: 10 * time.Minute, History: -1},
		httpedge.Config{}, smallSendBuffers)
	for range stalled {
		dialStalled(t, s.srv.Listener.Addr().String(), "/events?channel=crowd")
	}
	// The readers who keep up joined last: their turns queue behind every
	// stalled one.
	readers := []*client{s.subscribe(t, "channel=crowd", nil), s.subscribe(t, "channel=crowd", nil)}
	pad := strings.Repeat("x", size)
	for i := range events {
		_, err := s.hub.Publish(context.Background(), "crowd", sse.Event{Data: fmt.Appendf(nil, "%d %s", i, pad)})
		require.NoError(t, err)
		for _, c := range readers {
			ev := c.Next(t)
			require.True(t, strings.HasPrefix(string(ev.Data), fmt.Sprintf("%d ", i)), "event %d in order, got %.12q", i, ev.Data)
		}
	}
	blocked := actorstest.BlockedWrites()
	t.Logf("%d of %d stalled streams blocked in a write", blocked, stalled)
	require.Greater(t, blocked, 128, "the stalled streams hold more workers than a hub keeps idle")
}
