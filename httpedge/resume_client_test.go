package httpedge_test

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	sseclient "github.com/squall-sse/squall/client"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

// cutter lets a test cut the stream being served, as a network failure
// would, at a moment of its choosing: it closes the connection that last
// started a request. (A stream taken over from net/http no longer watches
// its request's context, which ends as its handler returns.)
type cutter struct {
	conn atomic.Pointer[net.Conn]
}

func (c *cutter) wrap(srv *httptest.Server) {
	srv.Config.ConnState = func(nc net.Conn, st http.ConnState) {
		if st == http.StateActive {
			c.conn.Store(&nc)
		}
	}
}

func (c *cutter) cut() {
	if nc := c.conn.Load(); nc != nil {
		_ = (*nc).Close()
	}
}

// TestResumeHundredThousandEvents publishes 100,000 events while the hub
// cuts the client's stream at random points; the client resumes each time
// with Last-Event-ID, and what it received, put end to end, is exactly the
// published sequence.
func TestResumeHundredThousandEvents(t *testing.T) {
	const total = 100_000
	var cut cutter
	// Every event stays replayable: no byte bound (100,000 events cost
	// about 27 MB of history, past the 4 MiB default).
	s := newHubServer(t, actors.Config{History: total, HistoryBytes: -1, Heartbeat: -1}, httpedge.Config{}, cut.wrap)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := sseclient.Connect(ctx, s.srv.URL+"/events?channel=big", sseclient.Config{InitialRetry: time.Millisecond, MaxRetry: 10 * time.Millisecond})
	require.NoError(t, err)
	defer cs.Close()

	published := make(chan error, 1)
	go func() {
		for i := range total {
			if _, err := s.hub.Publish(ctx, "big", sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()

	rng := rand.New(rand.NewPCG(7, 11))
	nextCut := rng.IntN(5000)
	// A cut waits for the client to be on a new connection: events it
	// still reads from the one cut last must not count as another cut.
	cutOn := int64(-1)
	got := make([]int, 0, total)
	for len(got) < total {
		ev, err := cs.Next(ctx)
		require.NoError(t, err, "after %d events", len(got))
		require.NotEqual(t, sseclient.ResetEvent, ev.Event, "nothing fell out of the history")
		n, err := strconv.Atoi(string(ev.Data))
		require.NoError(t, err)
		got = append(got, n)
		if len(got) >= nextCut {
			if c := cs.Stats().Connects; c > cutOn {
				cut.cut()
				cutOn = c
				nextCut += 1 + rng.IntN(5000)
			}
		}
	}
	require.NoError(t, <-published)
	for i, n := range got {
		if n != i {
			require.Failf(t, "sequence broken", "event %d is %d (gap or duplicate)", i, n)
		}
	}
	st := cs.Stats()
	t.Logf("%d events over %d connections", st.Events, st.Connects)
	assert.Greater(t, st.Reconnects, int64(20), "the stream was cut many times")
}
