package actors_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/sse"
)

// gatedWriter is a client whose first write of data blocks until open is closed: a
// reader that stalls, then catches up.
type gatedWriter struct {
	header  http.Header
	open    chan struct{}
	entered chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func newGatedWriter() *gatedWriter {
	return &gatedWriter{header: http.Header{}, open: make(chan struct{}), entered: make(chan struct{})}
}

func (w *gatedWriter) Header() http.Header { return w.header }
func (w *gatedWriter) WriteHeader(int)     {}
func (w *gatedWriter) Flush()              {}
func (w *gatedWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil // the stream's first flush, of headers only
	}
	w.once.Do(func() { close(w.entered) })
	<-w.open
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

func (w *gatedWriter) events(t *testing.T) []string {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	return eventData(bytes.NewReader(w.buf.Bytes()))
}

func TestOverflowPolicies(t *testing.T) {
	tests := []struct {
		policy      actors.Overflow
		wantDropped bool
		wantReason  actors.CloseReason
		check       func(t *testing.T, got []string)
	}{
		{actors.DropNewest, true, 0, func(t *testing.T, got []string) {
			assert.Equal(t, []string{"0", "1", "2", "3", "4", "5"}, got, "the first frames are kept, the rest dropped")
		}},
		{actors.DropOldest, true, 0, func(t *testing.T, got []string) {
			require.NotEmpty(t, got)
			assert.Equal(t, "0", got[0], "the frame being written when the client stalled")
			assert.Equal(t, "99", got[len(got)-1], "the newest frame is kept")
			assert.LessOrEqual(t, len(got), 1+5, "at most the bound after the stalled write")
		}},
		{actors.Disconnect, false, actors.SlowConsumer, func(t *testing.T, got []string) {
			assert.Equal(t, []string{"0"}, got, "nothing after the stall is written")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			h := actorstest.NewHub(t, actors.Config{Overflow: tt.policy, MaxQueueFrames: 5, History: -1, Heartbeat: -1})
			w := newGatedWriter()
			s, err := h.Open(w, actors.StreamOptions{Channels: []string{"c"}})
			require.NoError(t, err)
			_, err = h.Publish(context.Background(), "c", sse.Event{Data: []byte("0")})
			require.NoError(t, err)
			<-w.entered // the stream is now stuck writing event 0
			for i := 1; i < 100; i++ {
				_, err := h.Publish(context.Background(), "c", sse.Event{Data: []byte(fmt.Sprint(i))})
				require.NoError(t, err)
			}
			close(w.open)
			if tt.wantReason != 0 {
				select {
				case <-s.Done():
				case <-time.After(5 * time.Second):
					require.FailNow(t, "stream not closed")
				}
				assert.Equal(t, tt.wantReason, s.Reason())
			} else {
				require.Eventually(t, func() bool {
					got := w.events(t)
					return len(got) > 0 && got[len(got)-1] == map[bool]string{true: "5", false: "99"}[tt.policy == actors.DropNewest]
				}, 5*time.Second, time.Millisecond)
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				s.Wait(ctx)
			}
			tt.check(t, w.events(t))
			assert.Equal(t, tt.wantDropped, s.Dropped() > 0, "drops counted: %d", s.Dropped())
		})
	}
}

func TestParseOverflow(t *testing.T) {
	for _, o := range []actors.Overflow{actors.Disconnect, actors.DropOldest, actors.DropNewest} {
		got, err := actors.ParseOverflow(o.String())
		require.NoError(t, err)
		assert.Equal(t, o, got)
	}
	_, err := actors.ParseOverflow("drop-everything")
	assert.ErrorContains(t, err, "drop-everything")
}

func TestPosOrderAndText(t *testing.T) {
	p, ok := actors.ParsePos("1700000000000-3")
	require.True(t, ok)
	assert.Equal(t, actors.Pos{Ms: 1700000000000, Seq: 3}, p)
	assert.Equal(t, "1700000000000-3", p.String())
	assert.True(t, p.Less(actors.Pos{Ms: 1700000000000, Seq: 4}))
	assert.True(t, p.Less(actors.Pos{Ms: 1700000000001}))
	assert.False(t, p.Less(p))
	for _, bad := range []string{"", "1", "-1", "1-", "a-1", "1-b", "+1-2", "1-2-3", strings.Repeat("9", 21) + "-0"} {
		_, ok := actors.ParsePos(bad)
		assert.False(t, ok, "ParsePos(%q)", bad)
	}
}

func TestChannelActorsStopWhenIdle(t *testing.T) {
	h := actorstest.NewHub(t, actors.Config{History: -1, Heartbeat: -1})
	for i := range 200 {
		s, err := h.Open(&discardWriter{header: http.Header{}}, actors.StreamOptions{Channels: []string{fmt.Sprint("room-", i)}})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.Equal(t, actors.ClientGone, s.Wait(ctx))
	}
	actorstest.RequireNoStreams(t, h)
}
