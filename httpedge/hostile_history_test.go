package httpedge_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/httpedge/sse"
)

// liveHeap is the heap in use once garbage is collected.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// dialStalledResume opens a stream with a Last-Event-ID over a socket with a
// tiny receive buffer and never reads past the response headers.
func dialStalledResume(t *testing.T, addr, path, lastID string) net.Conn {
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
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nLast-Event-ID: %s\r\n\r\n", path, lastID)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return conn
}

// progress is an Observer that counts resumes and written events.
type progress struct {
	actors.Observer
	resumed atomic.Int64
	written atomic.Int64
}

func (p *progress) Resumed(bool)                   { p.resumed.Add(1) }
func (p *progress) Flushed(n int, _ time.Duration) { p.written.Add(int64(n)) }

// payload is data of about size bytes that starts with "channel/seq/".
func payload(channel string, seq, size int) string {
	head := fmt.Sprintf("%s/%d/", channel, seq)
	return head + strings.Repeat("x", max(size-len(head), 0))
}

// Class 4 of issue 14: a client that resumes on channels with long
// histories and then stops reading holds no more than its stream's bound,
// not its whole replay; a client that reads gets the whole replay and the
// live events that follow, in order, once each.
func TestHostileUnboundedReplay(t *testing.T) {
	const (
		channels  = 16
		events    = 1000
		size      = 2 << 10
		resumers  = 20
		bound     = 256 << 10 // the stream bound, MaxQueueBytes
		allowance = 2 << 20   // sockets, goroutines and buffers of 20 connections
	)
	obs := &progress{Observer: nopObserver{}}
	// History has room for the live events published during the reader's
	// replay: a replay that the ring turns over is cut (slow consumer).
	s := newHubServer(t, actors.Config{MaxQueueBytes: bound, WriteTimeout: time.Minute, Heartbeat: -1, Observer: obs, History: 2 * events},
		httpedge.Config{MaxChannels: channels}, smallSendBuffers)
	names := make([]string, channels)
	for c := range names {
		names[c] = fmt.Sprint("r", c)
		for i := range events {
			_, err := s.hub.Publish(context.Background(), names[c], sse.Event{ID: fmt.Sprint("e", i), Data: []byte(payload(names[c], i, size))})
			require.NoError(t, err)
		}
	}
	query := "channel=" + strings.Join(names, "&channel=")
	before := liveHeap()

	addr := strings.TrimPrefix(s.srv.URL, "http://")
	for range resumers {
		dialStalledResume(t, addr, "/events?"+query, "e0")
	}
	// Settled: every channel of every stream resumed, and nothing more
	// gets written (the sockets are full).
	var last int64 = -1
	require.Eventually(t, func() bool {
		w := obs.written.Load()
		settled := obs.resumed.Load() == resumers*channels && w == last
		last = w
		return settled
	}, 20*time.Second, 200*time.Millisecond, "stalled resumers settle")
	after := liveHeap()
	growth := int64(after) - int64(before)
	t.Logf("history %d channels x %d x %d B; %d stalled resumers: heap %d KB -> %d KB, %+d KB in all, %d KB per stalled resumer (stream bound %d KB); %d events written before the sockets filled",
		channels, events, size, resumers, before>>10, after>>10, growth>>10, growth/resumers>>10, bound>>10, obs.written.Load())
	assert.Less(t, growth, int64(resumers*bound+allowance), "stalled resumers hold more than their stream bound")

	// A client that reads gets everything after e0 on each channel, then
	// what is published during its replay, in order and once.
	c := s.subscribe(t, "channel=r0&channel=r1&channel=r2&channel=r3", resumeHeader("e0"))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := events; i < events+20; i++ {
			for _, ch := range names[:4] {
				_, err := s.hub.Publish(context.Background(), ch, sse.Event{ID: fmt.Sprint("e", i), Data: []byte(payload(ch, i, 100))})
				assert.NoError(t, err)
			}
		}
	}()
	next := map[string]int{"r0": 1, "r1": 1, "r2": 1, "r3": 1}
	for range 4 * (events - 1 + 20) {
		var ev sse.Event
		select {
		case ev = <-c.events:
		case <-time.After(wait):
			require.FailNow(t, "no event within 5s", "got so far: %v", next)
		}
		ch, rest, _ := strings.Cut(string(ev.Data), "/")
		seq, _, _ := strings.Cut(rest, "/")
		require.Equal(t, fmt.Sprint(next[ch]), seq, "channel %s in order, no gap, no duplicate", ch)
		next[ch]++
	}
	wg.Wait()
	for _, ch := range names[:4] {
		assert.Equal(t, events+20, next[ch], "channel %s complete", ch)
	}
}
