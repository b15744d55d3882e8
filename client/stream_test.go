package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/client"
	"github.com/squall-sse/squall/sse"
)

func TestEvents(t *testing.T) {
	tests := []struct {
		name   string
		frames []string
		want   []sse.Event
	}{
		{
			name:   "named event with id",
			frames: []string{"id: 1\nevent: order\ndata: {\"a\":1}\n\n"},
			want:   []sse.Event{{ID: "1", Event: "order", Data: []byte(`{"a":1}`)}},
		},
		{
			name:   "no event field gives message",
			frames: []string{"data: hello\n\n"},
			want:   []sse.Event{{Event: client.MessageEvent, Data: []byte("hello")}},
		},
		{
			name:   "multi-line data and id that persists",
			frames: []string{"id: 7\ndata: a\n\n", "data: line1\ndata: line2\n\n"},
			want: []sse.Event{
				{ID: "7", Event: "message", Data: []byte("a")},
				{ID: "7", Event: "message", Data: []byte("line1\nline2")},
			},
		},
		{
			name:   "comments and retry-only blocks dispatch nothing",
			frames: []string{": keepalive\n\n", "retry: 10\n\n", "id: 2\ndata: x\n\n"},
			want:   []sse.Event{{ID: "2", Event: "message", Data: []byte("x")}},
		},
		{
			name:   "reset event comes like any named event",
			frames: []string{"id: 9\nevent: reset\ndata: {\"reason\":\"unknown id\"}\n\n"},
			want:   []sse.Event{{ID: "9", Event: client.ResetEvent, Data: []byte(`{"reason":"unknown id"}`)}},
		},
		{
			name:   "BOM and CRLF",
			frames: []string{"\xEF\xBB\xBFid: 3\r\nevent: e\r\ndata: crlf\r\n\r\n"},
			want:   []sse.Event{{ID: "3", Event: "e", Data: []byte("crlf")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				open(w)
				send(w, tt.frames...)
				hold(r)
			})
			s := connect(t, srv.URL, fast())
			ctx := testContext(t)
			for i, want := range tt.want {
				got, err := s.Next(ctx)
				require.NoError(t, err, "Next #%d", i)
				assert.Equal(t, want, got, "Next #%d", i)
			}
			st := s.Stats()
			assert.Equal(t, int64(len(tt.want)), st.Events, "Stats.Events")
			assert.Equal(t, tt.want[len(tt.want)-1].ID, st.LastEventID, "Stats.LastEventID")
			assert.True(t, st.Connected, "Stats.Connected")
		})
	}
}

// The server ends each response; the client must come back with the last
// id it returned, keep the id for events that carry none, and send the
// configured headers every time.
func TestReconnectResendsLastEventID(t *testing.T) {
	type request struct{ lastID, auth, accept, cache string }
	got := make(chan request, 10)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		got <- request{
			lastID: r.Header.Get("Last-Event-ID"),
			auth:   r.Header.Get("Authorization"),
			accept: r.Header.Get("Accept"),
			cache:  r.Header.Get("Cache-Control"),
		}
		open(w)
		switch n {
		case 1:
			send(w, "id: 1\ndata: a\n\n", "id: 2\ndata: b\n\n")
		case 2:
			// No id field: the event still carries the resume point.
			send(w, "data: c\n\n", "id: 3\ndata: d\n\n", "id: 4\ndata: cut off")
		default:
			send(w, "id: 5\ndata: e\n\n")
			hold(r)
		}
	})
	var rec recorder
	cfg := rec.hook(fast())
	cfg.LastEventID = "0"
	cfg.Header = map[string][]string{"Authorization": {"Bearer t0k3n"}}
	s := connect(t, srv.URL, cfg)
	ctx := testContext(t)

	want := []struct{ id, data string }{{"1", "a"}, {"2", "b"}, {"2", "c"}, {"3", "d"}, {"5", "e"}}
	for i, w := range want {
		ev, err := s.Next(ctx)
		require.NoError(t, err, "Next #%d", i)
		assert.Equal(t, w.id, ev.ID, "Next #%d: ID", i)
		assert.Equal(t, w.data, string(ev.Data), "Next #%d: Data", i)
	}

	// Event 4 never completed, so the resume point stays 3.
	for i, lastID := range []string{"0", "2", "3"} {
		r := <-got
		assert.Equal(t, lastID, r.lastID, "request %d: Last-Event-ID", i+1)
		assert.Equal(t, "Bearer t0k3n", r.auth, "request %d: Authorization", i+1)
		assert.Equal(t, "text/event-stream", r.accept, "request %d: Accept", i+1)
		assert.Equal(t, "no-cache", r.cache, "request %d: Cache-Control", i+1)
	}

	st := s.Stats()
	assert.Equal(t, int64(3), st.Attempts, "Stats.Attempts")
	assert.Equal(t, int64(3), st.Connects, "Stats.Connects")
	assert.Equal(t, int64(2), st.Reconnects, "Stats.Reconnects")
	assert.Equal(t, int64(5), st.Events, "Stats.Events")
	assert.Equal(t, "5", st.LastEventID, "Stats.LastEventID")

	connects, disconnects := rec.snapshot()
	require.Len(t, connects, 3, "OnConnect calls")
	assert.Equal(t, []string{"0", "2", "3"},
		[]string{connects[0].LastEventID, connects[1].LastEventID, connects[2].LastEventID}, "ConnectInfo.LastEventID")
	require.Len(t, disconnects, 2, "OnDisconnect calls")
	for i, d := range disconnects {
		assert.ErrorIs(t, d.Err, io.EOF, "disconnect %d: Err", i)
		assert.True(t, d.Connected, "disconnect %d: Connected", i)
		assert.Equal(t, int64(2), d.Events, "disconnect %d: Events", i)
		assert.Equal(t, time.Millisecond, d.Delay, "disconnect %d: Delay", i)
		assert.False(t, d.Final, "disconnect %d: Final", i)
	}
}

// A reconnected stream that starts with a BOM and an event without id:
// the seed line the client puts in front must not hide either.
func TestReconnectBOMAfterSeed(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		if n == 1 {
			send(w, "id: 1\ndata: a\n\n")
			return
		}
		send(w, "\xEF\xBB", "\xBFdata: b\n\n")
		hold(r)
	})
	s := connect(t, srv.URL, fast())
	ctx := testContext(t)
	_, err := s.Next(ctx)
	require.NoError(t, err, "Next #1")
	ev, err := s.Next(ctx)
	require.NoError(t, err, "Next #2")
	assert.Equal(t, sse.Event{ID: "1", Event: "message", Data: []byte("b")}, ev, "Next #2")
}

// The server's retry hint replaces InitialRetry (an hour here, so a client
// that ignored the hint would not reconnect within the test). The wait is
// checked through the hooks: the reported delay is at least the hint, and
// the time between the disconnect and the next connect at least the delay.
func TestHonoursServerRetry(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		if n == 1 {
			send(w, "retry: 50\n\n", "id: 1\ndata: a\n\n")
			return
		}
		send(w, "id: 2\ndata: b\n\n")
		hold(r)
	})
	var rec recorder
	cfg := rec.hook(client.Config{InitialRetry: time.Hour})
	s := connect(t, srv.URL, cfg)
	ctx := testContext(t)
	for i := range 2 {
		_, err := s.Next(ctx)
		require.NoError(t, err, "Next #%d", i+1)
	}

	const hint = 50 * time.Millisecond
	assert.Equal(t, hint, s.Stats().Retry, "Stats.Retry")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.disconnects, 1, "OnDisconnect calls")
	require.Len(t, rec.connects, 2, "OnConnect calls")
	delay := rec.disconnects[0].Delay
	assert.GreaterOrEqual(t, delay, hint, "Delay is at least the hint")
	assert.Less(t, delay, hint+hint/2, "Delay is at most hint plus 50%% jitter")
	// The wait starts after the hook returns, so no slack is needed.
	gap := rec.connectAt[1].Sub(rec.disconnAt[0])
	assert.GreaterOrEqual(t, gap, delay, "time from disconnect to reconnect")
}

// A server that always fails: the waits double from InitialRetry and stop
// at MaxRetry, and MaxAttempts ends the Stream.
func TestBackoffCapped(t *testing.T) {
	tests := []struct {
		name    string
		jitter  float64
		atLeast []time.Duration
		atMost  []time.Duration
	}{
		{
			name:    "no jitter",
			jitter:  -1,
			atLeast: ms(1, 2, 4, 4, 4),
			atMost:  ms(1, 2, 4, 4, 4),
		},
		{
			name:    "jitter only adds",
			jitter:  0.5,
			atLeast: ms(1, 2, 4, 4, 4),
			atMost:  ms(1.5, 3, 6, 6, 6),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				fail(w, http.StatusInternalServerError, `{"error": "boom"}`)
			})
			var rec recorder
			cfg := rec.hook(client.Config{
				InitialRetry: time.Millisecond,
				MaxRetry:     4 * time.Millisecond,
				Jitter:       tt.jitter,
				MaxAttempts:  6,
			})
			_, err := client.Connect(testContext(t), srv.URL, cfg)
			require.ErrorIs(t, err, client.ErrGaveUp, "Connect")
			var se *client.StatusError
			require.ErrorAs(t, err, &se, "Connect")
			assert.Equal(t, http.StatusInternalServerError, se.StatusCode, "StatusCode")
			assert.Contains(t, err.Error(), "boom", "error text")

			_, disconnects := rec.snapshot()
			require.Len(t, disconnects, 6, "OnDisconnect calls")
			for i, d := range disconnects[:5] {
				assert.False(t, d.Final, "attempt %d: Final", i+1)
				assert.False(t, d.Connected, "attempt %d: Connected", i+1)
				assert.GreaterOrEqual(t, d.Delay, tt.atLeast[i], "attempt %d: Delay", i+1)
				assert.LessOrEqual(t, d.Delay, tt.atMost[i], "attempt %d: Delay", i+1)
			}
			last := disconnects[5]
			assert.True(t, last.Final, "last attempt: Final")
			assert.Equal(t, err, last.Err, "last attempt: Err is what Connect returned")
			assert.Zero(t, last.Delay, "last attempt: Delay")
			assert.Equal(t, int64(6), srv.requests.Load(), "requests")
		})
	}
}

func ms(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, f := range v {
		out[i] = time.Duration(f * float64(time.Millisecond))
	}
	return out
}

// Responses that end the Stream at once, without a second request.
func TestFinalResponses(t *testing.T) {
	tests := []struct {
		name       string
		handler    func(w http.ResponseWriter)
		is         error
		status     int
		reason     string
		inErrorMsg []string
	}{
		{
			name:       "401 with JSON reason",
			handler:    func(w http.ResponseWriter) { fail(w, http.StatusUnauthorized, `{"error": "token expired"}`) },
			status:     401,
			reason:     "token expired",
			inErrorMsg: []string{"401", "Unauthorized", "token expired"},
		},
		{
			name: "403 with a text body",
			handler: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, "  not your channel\n")
			},
			status:     403,
			reason:     "not your channel",
			inErrorMsg: []string{"403", "not your channel"},
		},
		{
			name:    "404 without body",
			handler: func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) },
			status:  404,
		},
		{
			name: "201 is not 200",
			handler: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusCreated)
			},
			status: 201,
		},
		{
			name:    "204 No Content",
			handler: func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) },
			is:      client.ErrNoContent,
		},
		{
			name: "200 with the wrong Content-Type",
			handler: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = io.WriteString(w, "<html></html>")
			},
			is:         client.ErrContentType,
			inErrorMsg: []string{"text/html"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { tt.handler(w) })
			var rec recorder
			s, err := client.Connect(testContext(t), srv.URL, rec.hook(fast()))
			require.Error(t, err, "Connect")
			assert.Nil(t, s, "Connect: Stream")
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is, "Connect")
			}
			if tt.status != 0 {
				var se *client.StatusError
				require.ErrorAs(t, err, &se, "Connect")
				assert.Equal(t, tt.status, se.StatusCode, "StatusCode")
				assert.Equal(t, tt.reason, se.Reason, "Reason")
				assert.False(t, se.Retryable(), "Retryable")
			}
			for _, part := range tt.inErrorMsg {
				assert.Contains(t, err.Error(), part, "error text")
			}
			assert.Equal(t, int64(1), srv.requests.Load(), "requests")
			_, disconnects := rec.snapshot()
			require.Len(t, disconnects, 1, "OnDisconnect calls")
			assert.True(t, disconnects[0].Final, "Final")
		})
	}
}

// 204 on a reconnection ends the Stream too, after the events already
// received; every later Next returns the same error.
func TestNoContentOnReconnect(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		open(w)
		send(w, "id: 1\ndata: a\n\n")
	})
	s := connect(t, srv.URL, fast())
	ctx := testContext(t)
	_, err := s.Next(ctx)
	require.NoError(t, err, "Next #1")
	_, err = s.Next(ctx)
	require.ErrorIs(t, err, client.ErrNoContent, "Next #2")
	_, err = s.Next(ctx)
	require.ErrorIs(t, err, client.ErrNoContent, "Next #3")
	assert.Equal(t, int64(2), srv.requests.Load(), "requests")
	assert.False(t, s.Stats().Connected, "Stats.Connected")
}

// Statuses that say "try again": the first request fails, the second
// gets the stream. A Retry-After is honoured as a minimum wait.
func TestRetryableStatuses(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		minDelay   time.Duration
	}{
		{name: "503 with Retry-After", status: 503, retryAfter: "1", minDelay: time.Second},
		{name: "429 with Retry-After", status: 429, retryAfter: "1", minDelay: time.Second},
		{name: "408", status: 408, minDelay: time.Millisecond},
		{name: "500", status: 500, minDelay: time.Millisecond},
		{name: "502 with bad Retry-After", status: 502, retryAfter: "soon", minDelay: time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					fail(w, tt.status, `{"error": "busy"}`, "Retry-After", tt.retryAfter)
					return
				}
				open(w)
				send(w, "id: 1\ndata: ok\n\n")
				hold(r)
			})
			var rec recorder
			s := connect(t, srv.URL, rec.hook(fast()))
			ev, err := s.Next(testContext(t))
			require.NoError(t, err, "Next")
			assert.Equal(t, "ok", string(ev.Data), "Data")

			rec.mu.Lock()
			defer rec.mu.Unlock()
			require.Len(t, rec.disconnects, 1, "OnDisconnect calls")
			d := rec.disconnects[0]
			var se *client.StatusError
			require.ErrorAs(t, d.Err, &se, "DisconnectInfo.Err")
			assert.Equal(t, tt.status, se.StatusCode, "StatusCode")
			assert.Equal(t, "busy", se.Reason, "Reason")
			assert.True(t, se.Retryable(), "Retryable")
			assert.False(t, d.Final, "Final")
			assert.Equal(t, tt.minDelay, d.Delay, "Delay")
			gap := rec.connectAt[0].Sub(rec.disconnAt[0])
			assert.GreaterOrEqual(t, gap, d.Delay, "time from failure to reconnect")
		})
	}
}

// A network failure is retried; the error does not show the URL, which
// may carry an access token.
func TestNetworkErrorHidesURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "Listen")
	addr := ln.Addr().String()
	require.NoError(t, ln.Close(), "Close listener")

	var rec recorder
	cfg := rec.hook(fast())
	cfg.MaxAttempts = 2
	_, err = client.Connect(testContext(t), "http://"+addr+"/events?access_token=s3cr3t", cfg)
	require.ErrorIs(t, err, client.ErrGaveUp, "Connect")
	assert.NotContains(t, err.Error(), "s3cr3t", "error text")
	assert.Contains(t, err.Error(), "connection refused", "error text")
	_, disconnects := rec.snapshot()
	require.Len(t, disconnects, 2, "OnDisconnect calls")
	assert.False(t, disconnects[0].Final, "first failure is retried")
}

// The context given to Next interrupts a blocked read: Next returns its
// error, the server sees the connection close, and the next call resumes
// from the last event without losing one.
func TestNextContextInterruptsRead(t *testing.T) {
	gone := make(chan struct{})
	lastIDs := make(chan string, 2)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		lastIDs <- r.Header.Get("Last-Event-ID")
		open(w)
		if n == 1 {
			send(w, "id: 1\ndata: a\n\n")
			if hold(r) {
				close(gone)
			}
			return
		}
		send(w, "id: 2\ndata: b\n\n")
		hold(r)
	})
	var rec recorder
	s := connect(t, srv.URL, rec.hook(fast()))
	ev, err := s.Next(testContext(t))
	require.NoError(t, err, "Next #1")
	require.Equal(t, "1", ev.ID, "Next #1")

	// The server sends nothing more, so Next blocks until the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = s.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Next #2")
	waitClosed(t, gone, "server sees the connection close")
	assert.False(t, s.Stats().Connected, "Stats.Connected")

	ev, err = s.Next(testContext(t))
	require.NoError(t, err, "Next #3")
	assert.Equal(t, "2", ev.ID, "Next #3")
	assert.Equal(t, "", <-lastIDs, "request 1: Last-Event-ID")
	assert.Equal(t, "1", <-lastIDs, "request 2: Last-Event-ID")

	_, disconnects := rec.snapshot()
	require.Len(t, disconnects, 1, "OnDisconnect calls")
	assert.ErrorIs(t, disconnects[0].Err, context.DeadlineExceeded, "DisconnectInfo.Err")
	assert.Zero(t, disconnects[0].Delay, "DisconnectInfo.Delay")
	assert.False(t, disconnects[0].Final, "DisconnectInfo.Final")
}

// Cancelling during the wait between attempts returns at once, even with
// an hour still to wait.
func TestContextCancelDuringBackoff(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		fail(w, http.StatusServiceUnavailable, "")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := client.Config{
		InitialRetry: time.Hour,
		// Cancel once the first failure has set its wait.
		OnDisconnect: func(client.DisconnectInfo) { cancel() },
	}
	done := make(chan error, 1)
	go func() {
		_, err := client.Connect(ctx, srv.URL, cfg)
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled, "Connect")
	case <-time.After(testTimeout):
		t.Fatal("Connect did not return after cancel")
	}
	assert.Equal(t, int64(1), srv.requests.Load(), "requests")
}

// Connect's context bounds the connecting only.
func TestConnectContextEndsWithConnect(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		send(w, "data: a\n\n")
		hold(r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := client.Connect(ctx, srv.URL, fast())
	require.NoError(t, err, "Connect")
	defer s.Close()
	cancel()
	ev, err := s.Next(testContext(t))
	require.NoError(t, err, "Next after Connect's ctx is cancelled")
	assert.Equal(t, "a", string(ev.Data), "Data")
}

// Close from another goroutine ends a blocked Next with ErrClosed and
// closes the connection.
func TestCloseInterruptsNext(t *testing.T) {
	gone := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		if hold(r) {
			close(gone)
		}
	})
	var rec recorder
	s := connect(t, srv.URL, rec.hook(fast()))
	done := make(chan error, 1)
	go func() {
		_, err := s.Next(context.Background())
		done <- err
	}()
	require.NoError(t, s.Close(), "Close")
	select {
	case err := <-done:
		assert.ErrorIs(t, err, client.ErrClosed, "Next")
	case <-time.After(testTimeout):
		t.Fatal("Next did not return after Close")
	}
	waitClosed(t, gone, "server sees the connection close")
	_, err := s.Next(context.Background())
	assert.ErrorIs(t, err, client.ErrClosed, "Next after Close")
	require.NoError(t, s.Close(), "second Close")

	_, disconnects := rec.snapshot()
	require.Len(t, disconnects, 1, "OnDisconnect calls")
	assert.ErrorIs(t, disconnects[0].Err, client.ErrClosed, "DisconnectInfo.Err")
	assert.True(t, disconnects[0].Final, "DisconnectInfo.Final")
	assert.True(t, disconnects[0].Connected, "DisconnectInfo.Connected")
}

// A peer that goes silent is dropped after IdleTimeout, and the stream
// resumes.
func TestIdleTimeout(t *testing.T) {
	lastIDs := make(chan string, 2)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		lastIDs <- r.Header.Get("Last-Event-ID")
		open(w)
		if n == 1 {
			send(w, "id: 1\ndata: a\n\n")
		} else {
			send(w, "id: 2\ndata: b\n\n")
		}
		hold(r)
	})
	var rec recorder
	cfg := rec.hook(fast())
	cfg.IdleTimeout = 100 * time.Millisecond
	s := connect(t, srv.URL, cfg)
	ctx := testContext(t)
	for i, want := range []string{"1", "2"} {
		ev, err := s.Next(ctx)
		require.NoError(t, err, "Next #%d", i+1)
		assert.Equal(t, want, ev.ID, "Next #%d", i+1)
	}
	assert.Equal(t, "", <-lastIDs, "request 1: Last-Event-ID")
	assert.Equal(t, "1", <-lastIDs, "request 2: Last-Event-ID")
	_, disconnects := rec.snapshot()
	require.Len(t, disconnects, 1, "OnDisconnect calls")
	assert.ErrorIs(t, disconnects[0].Err, client.ErrIdleTimeout, "DisconnectInfo.Err")
}

// An event of 256 KiB arrives in hundreds of small TCP writes, with a
// CRLF split between two of them, and comes out whole.
func TestLongEventSplitAcrossWrites(t *testing.T) {
	line := strings.Repeat("0123456789abcdef", 16<<10) // 256 KiB
	frame := "id: big\r\nevent: blob\r\ndata: " + line + "\r\ndata: tail\r\n\r\n"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		const chunk = 997 // odd, so chunk edges fall everywhere, CRLF included
		for i := 0; i < len(frame); i += chunk {
			send(w, frame[i:min(i+chunk, len(frame))])
		}
		hold(r)
	})
	s := connect(t, srv.URL, fast())
	ev, err := s.Next(testContext(t))
	require.NoError(t, err, "Next")
	assert.Equal(t, "big", ev.ID, "ID")
	assert.Equal(t, "blob", ev.Event, "Event")
	require.Len(t, ev.Data, len(line)+len("\ntail"), "Data length")
	assert.True(t, string(ev.Data) == line+"\ntail", "Data content")
}

// An event over MaxEventBytes ends the Stream: reconnecting would meet it
// again.
func TestEventTooLongIsFinal(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		send(w, "data: "+strings.Repeat("x", 100)+"\n\n")
		hold(r)
	})
	cfg := fast()
	cfg.MaxEventBytes = 50
	s := connect(t, srv.URL, cfg)
	_, err := s.Next(testContext(t))
	require.Error(t, err, "Next")
	assert.True(t, errors.Is(err, sse.ErrEventTooLong) || errors.Is(err, sse.ErrLineTooLong), "Next: %v", err)
	assert.Equal(t, int64(1), srv.requests.Load(), "requests")
}

// With negative MaxAttempts the Stream is one connection: Next returns
// io.EOF where the server ends it, and a range loop just ends.
func TestNoReconnect(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		send(w, "id: 1\ndata: a\n\n", "id: 2\ndata: b\n\n")
	})
	cfg := fast()
	cfg.MaxAttempts = -1
	s := connect(t, srv.URL, cfg)
	var ids []string
	for ev, err := range s.Events(testContext(t)) {
		require.NoError(t, err, "Events")
		ids = append(ids, ev.ID)
	}
	assert.Equal(t, []string{"1", "2"}, ids, "ids")
	_, err := s.Next(testContext(t))
	assert.ErrorIs(t, err, io.EOF, "Next after the end")
	assert.Equal(t, int64(1), srv.requests.Load(), "requests")
}

// A stream that opens but ends before any event counts as a failure, so a
// server that accepts and hangs up at once sees the waits grow.
func TestEmptyStreamsBackOff(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		if n == 1 {
			send(w, "data: a\n\n")
		}
	})
	var rec recorder
	cfg := rec.hook(client.Config{InitialRetry: time.Millisecond, Jitter: -1, MaxAttempts: 3})
	s := connect(t, srv.URL, cfg)
	ctx := testContext(t)
	_, err := s.Next(ctx)
	require.NoError(t, err, "Next #1")
	_, err = s.Next(ctx)
	require.ErrorIs(t, err, client.ErrGaveUp, "Next #2")
	require.ErrorIs(t, err, io.EOF, "Next #2")
	_, disconnects := rec.snapshot()
	require.Len(t, disconnects, 4, "OnDisconnect calls")
	// After a stream with events: the reconnection time, then doubling.
	assert.Equal(t, ms(1, 1, 2, 0), []time.Duration{
		disconnects[0].Delay, disconnects[1].Delay, disconnects[2].Delay, disconnects[3].Delay,
	}, "delays")
}

func TestConnectRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		url  string
		cfg  client.Config
	}{
		{name: "LastEventID with LF", url: "http://127.0.0.1:1/", cfg: client.Config{LastEventID: "a\nb"}},
		{name: "scheme", url: "ftp://127.0.0.1/", cfg: client.Config{}},
		{name: "unparsable URL", url: "http://[::1", cfg: client.Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := client.Connect(context.Background(), tt.url, tt.cfg)
			assert.Error(t, err, "Connect")
			assert.Nil(t, s, "Connect: Stream")
		})
	}
}

// Next from a hook, while Next runs, is a programming error.
func TestConcurrentNextPanics(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		send(w, "data: a\n\n")
		if n > 1 {
			hold(r)
		}
	})
	var rec recorder
	s := connect(t, srv.URL, rec.hook(fast()))
	rec.mu.Lock()
	rec.onConnect = func(client.ConnectInfo) { _, _ = s.Next(context.Background()) }
	rec.mu.Unlock()
	ctx := testContext(t)
	_, err := s.Next(ctx)
	require.NoError(t, err, "Next #1")
	assert.PanicsWithValue(t, "client: concurrent calls to Stream.Next", func() { _, _ = s.Next(ctx) }, "Next #2")
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatal(what)
	}
}

// A range loop reports giving up, even when the last failure was an
// empty stream's io.EOF.
func TestEventsReportsGivingUp(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		if n == 1 {
			send(w, "data: a\n\n")
		}
	})
	cfg := fast()
	cfg.MaxAttempts = 2
	s := connect(t, srv.URL, cfg)
	var got []string
	var last error
	for ev, err := range s.Events(testContext(t)) {
		if err != nil {
			last = err
			break
		}
		got = append(got, string(ev.Data))
	}
	assert.Equal(t, []string{"a"}, got, "events")
	assert.ErrorIs(t, last, client.ErrGaveUp, "error yielded")
}
