package httpedge_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/httpedge"
)

// limitedServer serves /ok, and /block until release is closed, behind a
// ConnLimiter.
func limitedServer(t *testing.T, limits httpedge.ConnLimits) (*httpedge.ConnLimiter, string, chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	lim := httpedge.NewConnLimiter(ln, limits)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/block", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-release
	})
	srv := &http.Server{Handler: mux, ConnState: lim.ConnState}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lim)
	}()
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		_ = srv.Close()
		<-served
	})
	return lim, ln.Addr().String(), release
}

// request opens a connection from ip, sends a request for path and returns
// the connection once the status line is in, or nil if the server closed it.
func request(t *testing.T, ip, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, _ = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return nil
	}
	require.True(t, strings.HasPrefix(line, "HTTP/1.1 200"), "status line %q", line)
	return c
}

// requireClosed waits for the server to close c.
func requireClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	_, err := io.Copy(io.Discard, c)
	require.NoError(t, err, "%s: closed by the server", what)
}

func TestConnLimiter(t *testing.T) {
	t.Run("per peer", func(t *testing.T) {
		lim, addr, _ := limitedServer(t, httpedge.ConnLimits{MaxPerPeer: 2})
		require.NotNil(t, request(t, "127.0.0.1", addr, "/ok"))
		require.NotNil(t, request(t, "127.0.0.1", addr, "/ok"))
		assert.Nil(t, request(t, "127.0.0.1", addr, "/ok"), "a third connection from 127.0.0.1")
		assert.NotNil(t, request(t, "127.0.0.2", addr, "/ok"), "another peer")
		assert.Equal(t, uint64(1), lim.Stats().RefusedPeer)
	})
	t.Run("at the limit the longest idle goes", func(t *testing.T) {
		lim, addr, _ := limitedServer(t, httpedge.ConnLimits{Max: 3})
		oldest := request(t, "127.0.0.1", addr, "/ok")
		require.NotNil(t, oldest)
		// The client has the status line before the server marks the
		// connection idle: without this wait the second one can go idle
		// first and be the one shed.
		require.Eventually(t, func() bool { return lim.Stats().Idle == 1 }, wait, time.Millisecond)
		require.NotNil(t, request(t, "127.0.0.1", addr, "/ok"))
		require.NotNil(t, request(t, "127.0.0.1", addr, "/block")) // busy: never shed
		require.Eventually(t, func() bool { return lim.Stats().Idle == 2 }, wait, time.Millisecond)
		require.NotNil(t, request(t, "127.0.0.2", addr, "/ok"), "a new peer at the limit")
		requireClosed(t, oldest, "the connection idle the longest")
		s := lim.Stats()
		assert.Equal(t, uint64(1), s.ShedIdle)
		assert.Equal(t, 3, s.Open)
	})
	t.Run("unfinished headers count as idle", func(t *testing.T) {
		lim, addr, _ := limitedServer(t, httpedge.ConnLimits{Max: 1})
		slow, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer slow.Close()
		_, err = io.WriteString(slow, "GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		require.NoError(t, err)
		require.Eventually(t, func() bool { return lim.Stats().Open == 1 }, wait, time.Millisecond)
		require.NotNil(t, request(t, "127.0.0.2", addr, "/ok"))
		requireClosed(t, slow, "the slowloris connection")
	})
	t.Run("all busy: the new one goes", func(t *testing.T) {
		lim, addr, release := limitedServer(t, httpedge.ConnLimits{Max: 2})
		require.NotNil(t, request(t, "127.0.0.1", addr, "/block"))
		require.NotNil(t, request(t, "127.0.0.1", addr, "/block"))
		assert.Nil(t, request(t, "127.0.0.2", addr, "/ok"))
		assert.Equal(t, uint64(1), lim.Stats().RefusedMax)
		close(release)
		require.Eventually(t, func() bool { return lim.Stats().Idle == 2 }, wait, time.Millisecond)
		assert.NotNil(t, request(t, "127.0.0.2", addr, "/ok"), "served again once a connection is idle")
	})
}
