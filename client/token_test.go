package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/client"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

var hubSecret = []byte("a client-test HS256 secret, 32B!")

// expiries counts streams the hub closed because their token expired.
type expiries struct {
	actorstest.NopObserver
	n atomic.Int64
}

func (e *expiries) StreamClosed(r actors.CloseReason) {
	if r == actors.Expired {
		e.n.Add(1)
	}
}

// authHub is a real Squall hub with HS256 auth behind a real socket.
func authHub(t *testing.T, obs actors.Observer, expiryRetry time.Duration) (*actors.Hub, string) {
	t.Helper()
	h := actorstest.NewHub(t, actors.Config{Observer: obs})
	srv := httptest.NewServer(httpedge.New(httpedge.Config{Hub: h,
		Auth: &httpedge.Auth{Secret: hubSecret, ExpiryRetry: expiryRetry}}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = h.Drain(ctx, 0)
		srv.Close()
	})
	return h, srv.URL
}

func mint(t *testing.T, ttl time.Duration) string {
	c := httpedge.Claims{Subscribe: []string{"orders"}}
	c.Subject = "c1"
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(ttl))
	tok, err := httpedge.SignToken(hubSecret, c)
	if err != nil {
		panic(err) // HS256 signing cannot fail with a non-empty key
	}
	return tok
}

// lazySource hands out one 2-second token until the server refuses it:
// it learns of expiry only from a 401, the hardest case for the client.
type lazySource struct {
	mu      sync.Mutex
	tok     string
	minted  int
	refusal int
}

func (l *lazySource) token(t *testing.T) func(context.Context, string) (string, error) {
	return func(_ context.Context, refused string) (string, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if refused != "" {
			l.refusal++
			assert.Equal(t, l.tok, refused, "the refused token is the one handed out")
		}
		if l.tok == "" || refused == l.tok {
			l.tok = mint(t, 2*time.Second)
			l.minted++
		}
		return l.tok, nil
	}
}

func (l *lazySource) counts() (minted, refusals int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.minted, l.refusal
}

// TestTokenRefreshAcrossExpiries: a 2-second token, expiring three times
// under a live stream. At each expiry the hub closes the stream with its
// retry hint; the reconnect carries the stale token and gets 401; the
// client asks the source again, gets a fresh token, and resumes with
// Last-Event-ID. Events published all along arrive all, once, in order.
func TestTokenRefreshAcrossExpiries(t *testing.T) {
	obs := &expiries{}
	hub, url := authHub(t, obs, 200*time.Millisecond)
	src := &lazySource{}
	var rec recorder
	s := connect(t, url+"/events?channel=orders", rec.hook(client.Config{Token: src.token(t), MaxAttempts: 3}))

	var stop atomic.Bool
	published := make(chan int, 1)
	go func() {
		// The ticker spreads the events over the run, reconnect gaps
		// included: pacing, not synchronization.
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for ; !stop.Load(); n++ {
			_, err := hub.Publish(context.Background(), "orders", sse.Event{Data: []byte(strconv.Itoa(n))})
			if !assert.NoError(t, err) {
				break
			}
			<-tick.C
		}
		_, err := hub.Publish(context.Background(), "orders", sse.Event{Event: "end"})
		assert.NoError(t, err)
		published <- n
	}()

	ctx := testContext(t)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var got []int
	for {
		ev, err := s.Next(ctx)
		require.NoError(t, err, "Next after %d events", len(got))
		if ev.Event == "end" {
			break
		}
		n, err := strconv.Atoi(string(ev.Data))
		require.NoError(t, err)
		got = append(got, n)
		if obs.n.Load() >= 3 {
			stop.Store(true)
		}
	}
	n := <-published
	require.Len(t, got, n, "every event published arrived")
	for i, v := range got {
		require.Equal(t, i, v, "event %d in order, no duplicate", i)
	}
	minted, refusals := src.counts()
	assert.GreaterOrEqual(t, obs.n.Load(), int64(3), "three expiries")
	assert.GreaterOrEqual(t, refusals, 3, "each expiry: a 401, then the source was asked again")
	assert.Equal(t, refusals+1, minted, "one token at first, one per refusal")
	st := s.Stats()
	assert.GreaterOrEqual(t, st.Reconnects, int64(3))
	conns, disc := rec.snapshot()
	for _, c := range conns[1:] {
		assert.NotEmpty(t, c.LastEventID, "attempt %d resumed", c.Attempt)
	}
	unauthorized := 0
	for _, d := range disc {
		var se *client.StatusError
		if errors.As(d.Err, &se) && se.StatusCode == http.StatusUnauthorized {
			unauthorized++
			assert.Zero(t, d.Delay, "a 401 is retried at once with a new token")
			assert.False(t, d.Final)
		}
	}
	assert.Equal(t, refusals, unauthorized)
}

func TestTokenSecond401IsFinal(t *testing.T) {
	_, url := authHub(t, actorstest.NopObserver{}, time.Second)
	var calls []string
	bad := func(_ context.Context, refused string) (string, error) {
		calls = append(calls, refused)
		return mint(t, -time.Minute), nil // always expired
	}
	_, err := client.Connect(testContext(t), url+"/events?channel=orders", client.Config{Token: bad})
	var se *client.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusUnauthorized, se.StatusCode)
	assert.Contains(t, se.Reason, "expired")
	require.Len(t, calls, 2, "asked once, then once more after the 401")
	assert.Empty(t, calls[0])
	assert.NotEmpty(t, calls[1], "the second call names the refused token")
}

// TestTokenSentEveryRequest: the token replaces any Authorization header
// and is fetched again for each reconnect.
func TestTokenSentEveryRequest(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		open(w)
		send(w, "id: "+strconv.Itoa(n)+"\ndata: x\n\n")
	})
	var calls atomic.Int64
	cfg := fast()
	cfg.Header = http.Header{"Authorization": {"Basic dTpw"}}
	cfg.Token = func(context.Context, string) (string, error) {
		return "t" + strconv.FormatInt(calls.Add(1), 10), nil
	}
	s := connect(t, srv.URL, cfg)
	for range 3 {
		_, err := s.Next(testContext(t))
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"Bearer t1", "Bearer t2", "Bearer t3"}, seen[:3])
}

func TestTokenErrors(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		send(w, "data: x\n\n")
	})
	t.Run("source failure is retried", func(t *testing.T) {
		var calls atomic.Int64
		var rec recorder
		cfg := rec.hook(fast())
		cfg.Token = func(context.Context, string) (string, error) {
			if calls.Add(1) < 3 {
				return "", errors.New("idp down")
			}
			return "ok", nil
		}
		s := connect(t, srv.URL, cfg)
		_, err := s.Next(testContext(t))
		require.NoError(t, err)
		_, disc := rec.snapshot()
		require.Len(t, disc, 2)
		for _, d := range disc {
			assert.ErrorIs(t, d.Err, client.ErrToken)
			assert.ErrorContains(t, d.Err, "idp down")
			assert.False(t, d.Final)
		}
	})
	for _, tt := range []struct{ name, tok string }{
		{"empty", ""},
		{"header injection", "abc\r\nX-Admin: 1"},
		{"space", "a b"},
		{"only padding", "=="},
		{"over the bound", strings.Repeat("a", client.MaxTokenBytes+1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			_, err := client.Connect(testContext(t), srv.URL, client.Config{Token: func(context.Context, string) (string, error) {
				calls.Add(1)
				return tt.tok, nil
			}})
			assert.ErrorIs(t, err, client.ErrToken)
			assert.Equal(t, int64(1), calls.Load(), "final: not asked again")
		})
	}
	t.Run("at the bound", func(t *testing.T) {
		tok := strings.Repeat("a", client.MaxTokenBytes-2) + "=="
		s := connect(t, srv.URL, client.Config{Token: func(context.Context, string) (string, error) { return tok, nil }})
		_, err := s.Next(testContext(t))
		assert.NoError(t, err)
	})
}
