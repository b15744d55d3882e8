package httpedge_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
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
