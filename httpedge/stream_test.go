package httpedge_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

// directServer serves one StreamHandler over a real socket.
func directServer(t *testing.T, cfg actors.Config, produce httpedge.Producer) (*actors.Hub, *httptest.Server) {
	t.Helper()
	h := actorstest.NewHub(t, cfg)
	srv := httptest.NewServer(httpedge.StreamHandler(h, produce))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = h.Drain(ctx, 0)
		srv.Close()
	})
	return h, srv
}

func TestStreamHandlerProducerClosesStream(t *testing.T) {
	_, srv := directServer(t, actors.Config{}, func(ctx context.Context, s *actors.Stream) error {
		for n := 1; n <= 3; n++ {
			data, err := sse.MarshalData(map[string]int{"n": n})
			if err != nil {
				return err
			}
			if err := s.Publish(ctx, sse.Event{Data: data, Event: "counter", ID: fmt.Sprint(n)}); err != nil {
				return err
			}
		}
		return nil
	})
	hs := &hubServer{srv: srv}
	c := hs.subscribeURL(t, srv.URL)
	evs := c.NextN(t, 3)
	for i, ev := range evs {
		assert.Equal(t, "counter", ev.Event)
		assert.Equal(t, fmt.Sprint(i+1), ev.ID)
		assert.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i+1), string(ev.Data))
	}
	c.RequireEnded(t)
}

func TestStreamHandlerStopsProducerWhenClientLeaves(t *testing.T) {
	stopped := make(chan error, 1)
	h, srv := directServer(t, actors.Config{}, func(ctx context.Context, s *actors.Stream) error {
		for i := 0; ; i++ {
			if err := s.Publish(ctx, sse.Event{Data: []byte(fmt.Sprint(i))}); err != nil {
				stopped <- err
				return err
			}
			select {
			case <-ctx.Done():
				stopped <- ctx.Err()
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	})
	hs := &hubServer{srv: srv}
	c := hs.subscribeURL(t, srv.URL)
	c.NextN(t, 3)
	c.Close()
	select {
	case err := <-stopped:
		assert.Error(t, err, "the producer saw its stream end")
	case <-time.After(wait):
		require.FailNow(t, "producer still running after the client left")
	}
	actorstest.RequireNoStreams(t, h)
}

func TestStreamHandlerHeartbeat(t *testing.T) {
	_, srv := directServer(t, actors.Config{Heartbeat: 30 * time.Millisecond}, func(ctx context.Context, s *actors.Stream) error {
		<-ctx.Done()
		return nil
	})
	hs := &hubServer{srv: srv}
	c := hs.subscribeURL(t, srv.URL)
	assert.Equal(t, "text/event-stream", c.Resp.Header.Get("Content-Type"))
	select {
	case text := <-c.Comments:
		assert.Equal(t, "keepalive", text)
	case <-time.After(wait):
		require.FailNow(t, "no heartbeat on a direct stream")
	}
}

func TestDrainSendsRetryAndCloses(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	a := s.subscribe(t, "channel=a", nil)
	b := s.subscribe(t, "channel=b", nil)
	s.edge.StartDraining()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, s.hub.Drain(ctx, 500*time.Millisecond))
	for _, c := range []*client{a, b} {
		c.RequireEnded(t)
		select {
		case r := <-c.Retries:
			assert.GreaterOrEqual(t, r, 500*time.Millisecond, "retry hint with jitter above the base")
			assert.LessOrEqual(t, r, time.Second)
		default:
			require.FailNow(t, "no retry hint before the close")
		}
	}
	resp, err := http.Get(s.srv.URL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "/readyz while draining")
	_, status := s.trySubscribe(t, "channel=a", nil)
	assert.Equal(t, http.StatusServiceUnavailable, status, "new streams refused while draining")
}

func TestHealthAndReady(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}
