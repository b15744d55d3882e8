package httpedge_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// dialStream sends a raw GET for channel and returns the connection and
// the response read from it.
func dialStream(t *testing.T, s *hubServer, channel, extra string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.srv.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = fmt.Fprintf(c, "GET /events?channel=%s HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\n%s\r\n", channel, extra)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	return c, br, resp
}

// A stream taken over from net/http answers as net/http would have: the
// status, the SSE headers and the middleware's (CORS) headers, chunked
// events, and, once the server closes the stream, the last chunk.
func TestTakenOverStreamIsChunkedHTTP11(t *testing.T) {
	closes := newCloseCounter()
	s := newHubServer(t, actors.Config{Observer: closes}, httpedge.Config{CORSOrigins: []string{"http://app.example"}})
	_, _, resp := dialStream(t, s, "to1", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	// Connection: close (which net/http's client reads into resp.Close and
	// removes from the header): the connection ends with the stream, and a
	// client must not put it back in its pool.
	assert.True(t, resp.Close, "Connection: close")
	assert.Equal(t, "http://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.NotEmpty(t, resp.Header.Get("Date"))
	assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)

	s.mustPublish(t, "to1", "hello")
	line := make([]byte, 0, 64)
	br := bufio.NewReader(resp.Body)
	for !strings.Contains(string(line), "data: hello") {
		b, err := br.ReadByte()
		require.NoError(t, err, "reading the event")
		line = append(line, b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, s.edge.Drain(ctx, 0, time.Second))
	// A clean end of the chunked body (the last chunk), not a cut.
	rest, err := io.ReadAll(br)
	require.NoError(t, err, "the body ends with its last chunk")
	assert.Contains(t, string(rest), "retry:")
	assert.Equal(t, 1, closes.count(actors.Shutdown))
}

// A client of an event stream sends nothing after its request: a byte ends
// the stream as if the client had left, and its connection is closed.
func TestTakenOverStreamEndsWhenTheClientSends(t *testing.T) {
	closes := newCloseCounter()
	s := newHubServer(t, actors.Config{Observer: closes}, httpedge.Config{})
	c, br, resp := dialStream(t, s, "to2", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool { return s.hub.OpenStreams() == 1 }, wait, time.Millisecond)

	_, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return closes.count(actors.ClientGone) == 1 }, wait, time.Millisecond)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	_, err = io.ReadAll(br)
	// The unread rest of what the client sent turns the close into a
	// reset; either way the connection ends before the deadline.
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server closed the connection: %v", err)
	}
	assert.Zero(t, s.hub.OpenStreams())
}

// HTTP/1.0 has no chunked encoding, and a request that asks to close the
// connection gets "Connection: close": both stay with net/http.
func TestStreamsNetHTTPKeeps(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	_, _, resp := dialStream(t, s, "to3", "Connection: close\r\n")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, resp.Close, "net/http answered Connection: close")
	s.mustPublish(t, "to3", "still served")
	br := bufio.NewReader(resp.Body)
	var got string
	for !strings.Contains(got, "data: still served") {
		l, err := br.ReadString('\n')
		require.NoError(t, err)
		got += l
	}
}
