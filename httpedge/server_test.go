package httpedge_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/sse"
)

func TestPublishWireFormat(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	c := s.subscribe(t, "channel=orders", nil)
	tests := []struct {
		name      string
		body      string
		wantEvent string
		wantData  string
		wantID    string // "" means: the hub assigns one
		wantRetry time.Duration
	}{
		{"json object compacted", `{"channel":"orders","data":{"orderId": "abc", "items": [1, 2]}}`, "", `{"orderId":"abc","items":[1,2]}`, "", 0},
		{"json string sent raw", `{"channel":"orders","data":"hello <b>&</b>"}`, "", `hello <b>&</b>`, "", 0},
		{"number", `{"channel":"orders","data":42}`, "", `42`, "", 0},
		{"null", `{"channel":"orders","data":null}`, "", `null`, "", 0},
		{"html not escaped in json", `{"channel":"orders","data":{"h":"<a>&"}}`, "", `{"h":"<a>&"}`, "", 0},
		{"named event with id and retry", `{"channel":"orders","data":"x","event":"order_update","id":"42","retry":3000}`, "order_update", "x", "42", 3 * time.Second},
		{"retry 0 is a hint, not none", `{"channel":"orders","data":"y","retry":0}`, "", "y", "", sse.RetryZero},
		{"multi-line LF", `{"channel":"orders","data":"a\nb\nc"}`, "", "a\nb\nc", "", 0},
		{"multi-line CRLF", `{"channel":"orders","data":"a\r\nb"}`, "", "a\nb", "", 0},
		{"lone CR", `{"channel":"orders","data":"a\rb"}`, "", "a\nb", "", 0},
		{"trailing newline kept", `{"channel":"orders","data":"a\n"}`, "", "a\n", "", 0},
		{"empty string", `{"channel":"orders","data":""}`, "", "", "", 0},
		{"U+2028 is not a line break", `{"channel":"orders","data":"a\u2028b\u0085c"}`, "", "a\u2028b\u0085c", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := s.publish(t, tt.body)
			require.Equal(t, http.StatusAccepted, code, "publish: %v", out)
			ev := c.Next(t)
			assert.Equal(t, tt.wantEvent, ev.Event, "event name")
			assert.Equal(t, tt.wantData, string(ev.Data), "data")
			assert.Equal(t, out["id"], ev.ID, "the stream's id is the one publish answered")
			if tt.wantID != "" {
				assert.Equal(t, tt.wantID, ev.ID)
			}
			assert.Equal(t, tt.wantRetry, ev.Retry, "retry")
		})
	}
}

// The Python SDK sends "retry": 0 (reconnect at once); it must reach the
// stream as the line "retry: 0", not vanish as "no hint".
func TestPublishRetryZeroWritesTheLine(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	c := ssetest.Subscribe(t, s.srv.URL+"/events?channel=orders", ssetest.Options{Frames: true})
	code, out := s.publish(t, `{"channel":"orders","data":"now","id":"z1","retry":0}`)
	require.Equal(t, http.StatusAccepted, code, "publish: %v", out)
	assert.Equal(t, "id: z1\nretry: 0\ndata: now\n\n", c.NextFrame(t))
}

func TestPublishRejectsBadInput(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{MaxBody: 1024})
	c := s.subscribe(t, "channel=orders", nil)
	tests := []struct {
		name string
		body string
		want int
	}{
		{"malformed json", `{"channel":"orders",`, 400},
		{"not an object", `[1,2]`, 400},
		{"missing channel", `{"data":1}`, 400},
		{"empty channel", `{"channel":"","data":1}`, 400},
		{"channel with space", `{"channel":"a b","data":1}`, 400},
		{"channel too long", `{"channel":"` + strings.Repeat("a", 257) + `","data":1}`, 400},
		{"missing data", `{"channel":"orders"}`, 400},
		{"id with LF", `{"channel":"orders","data":1,"id":"4\n2"}`, 400},
		{"id with CR", `{"channel":"orders","data":1,"id":"4\r2"}`, 400},
		{"id with NUL", `{"channel":"orders","data":1,"id":"4\u00002"}`, 400},
		{"empty id", `{"channel":"orders","data":1,"id":""}`, 400},
		{"event with LF", `{"channel":"orders","data":1,"event":"a\nid: 9"}`, 400},
		{"event with NUL", `{"channel":"orders","data":1,"event":"a\u0000"}`, 400},
		{"negative retry", `{"channel":"orders","data":1,"retry":-1}`, 400},
		{"fractional retry", `{"channel":"orders","data":1,"retry":1.5}`, 400},
		{"string retry", `{"channel":"orders","data":1,"retry":"5"}`, 400},
		{"unknown field", `{"channel":"orders","data":1,"evnet":"x"}`, 400},
		{"trailing data", `{"channel":"orders","data":1} {}`, 400},
		{"body over the limit", `{"channel":"orders","data":"` + strings.Repeat("x", 2000) + `"}`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := s.publish(t, tt.body)
			assert.Equal(t, tt.want, code, "status of POST /publish %s", tt.body)
			assert.NotEmpty(t, out["error"], "a JSON reason")
		})
	}
	// Nothing of the above reached the stream, and the hub still serves.
	id := s.mustPublish(t, "orders", "after")
	ev := c.Next(t)
	assert.Equal(t, "after", string(ev.Data))
	assert.Equal(t, id, ev.ID)
	assert.Empty(t, c.Events, "no other event reached the stream")
}

func TestEventsRejectsBadRequests(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{MaxChannels: 2})
	tests := []struct {
		name   string
		query  string
		header http.Header
	}{
		{"no channel", "", nil},
		{"invalid channel", "channel=a%20b", nil},
		{"empty channel", "channel=", nil},
		{"too many channels", "channel=a&channel=b&channel=c", nil},
		{"lastEventId with LF", "channel=a&lastEventId=1%0Aevent:%20x", nil},
		{"lastEventId with NUL", "channel=a&lastEventId=1%00", nil},
		{"Last-Event-ID too long", "channel=a", http.Header{"Last-Event-Id": {strings.Repeat("1", 9000)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, status := s.trySubscribe(t, tt.query, tt.header)
			assert.Equal(t, http.StatusBadRequest, status)
		})
	}
}

func TestHeadersFlushedBeforeAnyEvent(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	// subscribe returns once the response headers arrived: nothing has been
	// published, so they were flushed on their own.
	c := s.subscribe(t, "channel=a", nil)
	h := c.Resp.Header
	assert.Equal(t, "text/event-stream", h.Get("Content-Type"))
	assert.Equal(t, "no-cache", h.Get("Cache-Control"))
	assert.Equal(t, "no", h.Get("X-Accel-Buffering"))
	assert.True(t, c.Resp.Close, "Connection: close: an HTTP/1.1 stream is taken over and its connection ends with it")
	assert.Empty(t, h.Get("Content-Encoding"))
	assert.Empty(t, c.Events)
}

func TestHeartbeatAfterIdle(t *testing.T) {
	s := newHubServer(t, actors.Config{Heartbeat: 50 * time.Millisecond}, httpedge.Config{})
	c := s.subscribe(t, "channel=a", nil)
	select {
	case text := <-c.Comments:
		assert.Equal(t, "keepalive", text)
	case <-time.After(wait):
		require.FailNow(t, "no heartbeat")
	}
	assert.Empty(t, c.Events, "a heartbeat is not an event")
}

func TestNoHeartbeatWhenDisabled(t *testing.T) {
	s := newHubServer(t, actors.Config{Heartbeat: -1}, httpedge.Config{})
	c := s.subscribe(t, "channel=a", nil)
	// Let a publish go through first: had heartbeats been on at any
	// interval above zero, several would have been due by the second event.
	s.mustPublish(t, "a", "1")
	c.Next(t)
	require.Eventually(t, func() bool { s.mustPublish(t, "a", "2"); return len(c.Next(t).Data) > 0 }, wait, time.Millisecond)
	assert.Empty(t, c.Comments)
}

func TestTwoSubscribersGetEveryEventInOrder(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	a := s.subscribe(t, "channel=room", nil)
	b := s.subscribe(t, "channel=room", nil)
	var want []string
	for i := range 200 {
		want = append(want, fmt.Sprint(i))
		s.mustPublish(t, "room", fmt.Sprint(i))
	}
	assert.Equal(t, want, ssetest.Data(a.NextN(t, 200)))
	assert.Equal(t, want, ssetest.Data(b.NextN(t, 200)))
}

func TestOneStreamOnTwoChannels(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	c := s.subscribe(t, "channel=a&channel=b", nil)
	ida := s.mustPublish(t, "a", "to a")
	ev := c.Next(t)
	assert.Equal(t, "to a", string(ev.Data))
	assert.Equal(t, "a="+ida, ev.ID, "a stream on two channels carries the id of each")
	idb := s.mustPublish(t, "b", "to b")
	ev = c.Next(t)
	assert.Equal(t, "to b", string(ev.Data))
	assert.Equal(t, "a="+ida+"&b="+idb, ev.ID)
}

func TestClientGoneStopsItsActors(t *testing.T) {
	s := newHubServer(t, actors.Config{History: -1}, httpedge.Config{})
	c := s.subscribe(t, "channel=a&channel=b", nil)
	s.mustPublish(t, "a", "x")
	c.Next(t)
	require.Equal(t, 1, s.hub.OpenStreams())
	require.Equal(t, 2, s.hub.Channels())
	c.Close()
	actorstest.RequireNoStreams(t, s.hub)
}

func TestStalledReaderIsDisconnectedOthersKeepReceiving(t *testing.T) {
	obs := newCloseCounter()
	// The write timeout is far longer than the publishes take, even on a
	// loaded machine, so that the queue bound is what trips (a shorter one
	// races it: the blocked write may time out first).
	s := newHubServer(t, actors.Config{MaxQueueBytes: 256 << 10, WriteTimeout: time.Minute, Observer: obs}, httpedge.Config{}, smallSendBuffers)
	stalled := dialStalled(t, s.srv.Listener.Addr().String(), "/events?channel=feed")
	var readers []*client
	for range 100 {
		readers = append(readers, s.subscribe(t, "channel=feed", nil))
	}
	require.Eventually(t, func() bool { return s.hub.OpenStreams() == 101 }, wait, time.Millisecond)
	payload := strings.Repeat("x", 1024)
	// 600 KB: far past what the stalled socket and its 256 KB bound hold,
	// while a reader that keeps reading stays well inside the bound.
	const n = 600
	for i := range n {
		s.mustPublish(t, "feed", fmt.Sprintf("%d %s", i, payload))
	}
	require.Eventually(t, func() bool { return obs.count(actors.SlowConsumer) == 1 }, wait, time.Millisecond,
		"the stalled reader is closed as a slow consumer: %v", obs.snapshot())
	for _, r := range readers {
		got := r.NextN(t, n)
		for i, ev := range got {
			require.True(t, strings.HasPrefix(string(ev.Data), fmt.Sprintf("%d ", i)), "event %d in order", i)
		}
	}
	assert.Equal(t, 0, obs.count(actors.WriteTimeout), "no healthy reader timed out")
	_ = stalled
}

func TestHeartbeatAsNamedEvent(t *testing.T) {
	s := newHubServer(t, actors.Config{Heartbeat: 50 * time.Millisecond, HeartbeatEvent: "ping"}, httpedge.Config{})
	c := s.subscribe(t, "channel=a", nil)
	ev := c.Next(t)
	assert.Equal(t, "ping", ev.Event)
	assert.Empty(t, ev.Data)
	assert.Empty(t, ev.ID, "a heartbeat does not move the resume point")
}
