package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPollerConsumeSplit feeds one chunk split in two at every byte, as
// reads may split it, and expects the same receipt and id each time.
func TestPollerConsumeSplit(t *testing.T) {
	ns := time.Now().UnixNano()
	event := fmt.Sprintf("id: 42\ndata: 7 %d\n\n", ns)
	chunk := fmt.Sprintf("%x\r\n%s\r\n", len(event), event)
	for cut := range len(chunk) + 1 {
		var seqs []int
		p := &poller{report: func(seq, ms int) { seqs = append(seqs, seq) }}
		s := &pollStream{}
		now := time.Unix(0, ns)
		require.True(t, p.consume(s, []byte(chunk[:cut]), now), "consume first part, cut at %d", cut)
		require.True(t, p.consume(s, []byte(chunk[cut:]), now), "consume second part, cut at %d", cut)
		assert.Equal(t, []int{7}, seqs, "receipts, cut at %d", cut)
		assert.Equal(t, "42", string(s.lastID), "last id, cut at %d", cut)
		assert.Empty(t, s.carry, "carry-over, cut at %d", cut)
	}
}

func TestPollerConsumeTooLong(t *testing.T) {
	p := &poller{report: func(seq, ms int) {}}
	s := &pollStream{}
	long := make([]byte, pollMaxLine+1)
	assert.False(t, p.consume(s, long, time.Now()), "consume a line longer than pollMaxLine")
}

// TestPollerResumes runs one stream against a real server that sends an
// event, a chunk whose event it writes in two halves, then cuts the
// connection: the poller must report both, reopen with Last-Event-ID and
// report the event sent on the new connection. The server writes HTTP by
// hand so that the halves leave in separate writes within one chunk.
func TestPollerResumes(t *testing.T) {
	var mu sync.Mutex
	var resumedFrom []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if !assert.NoError(t, err, "hijack") {
			return
		}
		defer c.Close()
		send := func(s string) {
			_, err := c.Write([]byte(s))
			assert.NoError(t, err, "write")
		}
		event := func(seq int) string {
			return fmt.Sprintf("id: %d\ndata: %d %d\n\n", seq, seq, time.Now().UnixNano())
		}
		chunk := func(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }
		send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		if last := r.Header.Get("Last-Event-ID"); last != "" {
			mu.Lock()
			resumedFrom = append(resumedFrom, last)
			mu.Unlock()
			send(chunk(event(3)))
			io.Copy(io.Discard, c) // until the poller closes the stream
			return
		}
		send(chunk(event(1)))
		second := chunk(event(2))
		send(second[:12])
		send(second[12:])
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err, "parse server URL")

	got := make(chan int, 10)
	p, err := newPoller([]string{u.Host}, 0, 1, "c", func(seq, ms int) { got <- seq })
	require.NoError(t, err, "newPoller")
	defer p.close()
	var ready sync.WaitGroup
	ready.Add(1)
	go p.start(0, &ready)
	for _, want := range []int{1, 2, 3} {
		select {
		case seq := <-got:
			assert.Equal(t, want, seq, "receipt")
		case err := <-p.fail:
			t.Fatalf("poller failed: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no receipt of %d", want)
		}
	}
	ready.Wait()
	assert.Equal(t, int64(1), p.resets.Load(), "resets")
	mu.Lock()
	assert.Equal(t, []string{"2"}, resumedFrom, "Last-Event-ID of the reopened streams")
	mu.Unlock()
}
