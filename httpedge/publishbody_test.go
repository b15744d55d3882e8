package httpedge_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// TestPublishBodyAroundTheExactReadBound: a body whose declared length is
// at most 1,024 bytes is read into a buffer of that size, a longer one
// by growing a buffer. Both arrive whole at and past the bound, and a body
// shorter than its declared length is a 400 that publishes nothing.
func TestPublishBodyAroundTheExactReadBound(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	c := s.subscribe(t, "channel=exact", nil)
	const prefix, suffix = `{"channel":"exact","data":"`, `"}`
	for _, size := range []int{1023, 1024, 1025} {
		data := strings.Repeat("x", size-len(prefix)-len(suffix))
		status, reason, _ := postRaw(t, s.srv.URL, prefix+data+suffix)
		require.Equal(t, http.StatusAccepted, status, "a body of %d bytes: %s", size, reason)
		assert.Equal(t, data, string(c.Next(t).Data), "the event of a %d-byte body", size)
	}

	conn, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	sent := prefix + "cut" + suffix
	_, err = fmt.Fprintf(conn, "POST /publish HTTP/1.1\r\nHost: squall\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		len(sent)+100, sent)
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a body 100 bytes short of its length: %s", raw)
	var answer map[string]string
	require.NoError(t, json.Unmarshal(raw, &answer), "a JSON reason: %s", raw)
	assert.Contains(t, answer["error"], "reading body")

	s.mustPublish(t, "exact", "after")
	assert.Equal(t, "after", string(c.Next(t).Data), "the short body published nothing")
}
