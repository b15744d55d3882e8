package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPubFloorDeliversWhatTheGeneratorPublishes checks that the floor does
// the scenario's work, so its figures are a floor and not a shortcut: each
// publish reaches the streams of its channel, and only those, with rising
// ids; a stream that leaves is dropped.
func TestPubFloorDeliversWhatTheGeneratorPublishes(t *testing.T) {
	f := newPubFloor()
	srv := httptest.NewServer(f)
	defer srv.Close()

	open := func(channel string) (*bufio.Reader, func()) {
		resp, err := http.Get(srv.URL + "/events?channel=" + channel)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	a, closeA := open("a")
	b, closeB := open("b")
	defer closeB()

	publish := func(body string) (int, string) {
		resp, err := http.Post(srv.URL+"/publish", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(answer)
	}
	// Streams join after their head is out: wait for the joins, since
	// publishing until an event arrives would hide a lost one.
	require.Eventually(t, func() bool { return f.subscribers("a") == 1 && f.subscribers("b") == 1 }, 5*time.Second, 5*time.Millisecond)

	code, answer := publish(`{"channel":"a","data":"m1 1 0 x"}`)
	require.Equal(t, http.StatusAccepted, code)
	assert.JSONEq(t, `{"id":"1"}`, answer)
	code, _ = publish(`{"channel":"b","data":"m1 2 1 x"}`)
	require.Equal(t, http.StatusAccepted, code)
	code, answer = publish(`{"channel":"a","data":"m2 3 0 x"}`)
	require.Equal(t, http.StatusAccepted, code)
	assert.JSONEq(t, `{"id":"2"}`, answer)

	assert.Equal(t, "id: 1\ndata: m1 1 0 x\n\nid: 2\ndata: m2 3 0 x\n\n", readN(t, a, 6))
	assert.Equal(t, "id: 1\ndata: m1 2 1 x\n\n", readN(t, b, 3))

	code, _ = publish(`{"data":"no channel"}`)
	assert.Equal(t, http.StatusBadRequest, code)

	closeA()
	require.Eventually(t, func() bool { return f.subscribers("a") == 0 }, 5*time.Second, 5*time.Millisecond)
}

func (f *pubFloor) subscribers(name string) int {
	ch := f.channel(name)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.subs)
}

// readN reads n lines.
func readN(t *testing.T, r *bufio.Reader, n int) string {
	t.Helper()
	var b strings.Builder
	for range n {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		b.WriteString(line)
	}
	return b.String()
}
