package baseline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/squall-sse/squall/sse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, cfg Config) string {
	t.Helper()
	s := New(cfg)
	require.NoError(t, s.Start("127.0.0.1:0"), "Start")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, s.Shutdown(ctx), "Shutdown")
	})
	return "http://" + s.Addr()
}

func publish(t *testing.T, base, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+"/publish", "application/json", strings.NewReader(body))
	require.NoError(t, err, "POST /publish")
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "read publish answer")
	return resp.StatusCode, string(b)
}

// subscribe opens a stream and returns its parser once the headers are in.
func subscribe(t *testing.T, base, query, lastID string) *sse.Parser {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/events?"+query, nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "GET /events")
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /events status")
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	return sse.NewParser(resp.Body)
}

func next(t *testing.T, p *sse.Parser) sse.Event {
	t.Helper()
	ev, err := p.Next()
	require.NoError(t, err, "Parser.Next")
	return ev
}

func TestPublishAndReceive(t *testing.T) {
	base := start(t, Config{})
	p := subscribe(t, base, "channel=orders", "")
	tests := []struct {
		name, body, wantData, wantEvent string
	}{
		{"string sent raw", `{"channel":"orders","data":"hello"}`, "hello", ""},
		{"object compacted", `{"channel":"orders","data":{ "a" : [1, 2] },"event":"upd"}`, `{"a":[1,2]}`, "upd"},
		{"multi-line string", `{"channel":"orders","data":"a\nb"}`, "a\nb", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := publish(t, base, tt.body)
			require.Equal(t, http.StatusAccepted, code, "publish: %s", body)
			assert.JSONEq(t, fmt.Sprintf(`{"id":"%d"}`, i+1), body)
			ev := next(t, p)
			assert.Equal(t, fmt.Sprint(i+1), ev.ID)
			assert.Equal(t, tt.wantData, string(ev.Data))
			assert.Equal(t, tt.wantEvent, ev.Event)
		})
	}
}

func TestBadRequests(t *testing.T) {
	base := start(t, Config{})
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"no channel", http.MethodGet, "/events", "", http.StatusBadRequest},
		{"bad channel name", http.MethodGet, "/events?channel=a%20b", "", http.StatusBadRequest},
		{"malformed body", http.MethodPost, "/publish", `{"channel":`, http.StatusBadRequest},
		{"missing data", http.MethodPost, "/publish", `{"channel":"x"}`, http.StatusBadRequest},
		{"bad event name", http.MethodPost, "/publish", `{"channel":"x","data":1,"event":"a\nb"}`, http.StatusBadRequest},
		{"body too large", http.MethodPost, "/publish", `{"channel":"x","data":"` + strings.Repeat("z", 1<<20) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err, "%s %s", tt.method, tt.path)
			defer resp.Body.Close()
			assert.Equal(t, tt.want, resp.StatusCode)
			var e struct{ Error string }
			assert.NoError(t, json.NewDecoder(resp.Body).Decode(&e), "error body is JSON")
			assert.NotEmpty(t, e.Error, "error reason")
		})
	}
}

func postBatch(t *testing.T, base, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+"/publish/batch", "application/json", strings.NewReader(body))
	require.NoError(t, err, "POST /publish/batch")
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "read batch answer")
	return resp.StatusCode, string(b)
}

func TestPublishBatch(t *testing.T) {
	ts := httptest.NewServer(New(Config{}).Handler())
	t.Cleanup(ts.Close)
	pa := subscribe(t, ts.URL, "channel=a", "")
	pb := subscribe(t, ts.URL, "channel=b", "")
	code, body := postBatch(t, ts.URL, `[{"channel":"a","data":"a1"},{"channel":"b","data":{ "x" : 1 },"event":"upd"},{"channel":"a","data":"a2"}]`)
	require.Equal(t, http.StatusAccepted, code, body)
	assert.JSONEq(t, `{"accepted":3,"results":[{"status":202,"id":"1"},{"status":202,"id":"1"},{"status":202,"id":"2"}]}`, body)
	for i, want := range []string{"a1", "a2"} {
		ev := next(t, pa)
		assert.Equal(t, fmt.Sprint(i+1), ev.ID)
		assert.Equal(t, want, string(ev.Data))
	}
	ev := next(t, pb)
	assert.Equal(t, "1", ev.ID)
	assert.Equal(t, `{"x":1}`, string(ev.Data))
	assert.Equal(t, "upd", ev.Event)

	var many strings.Builder
	many.WriteString("[")
	for i := range maxBatch + 1 {
		if i > 0 {
			many.WriteString(",")
		}
		many.WriteString(`{"channel":"a","data":"z"}`)
	}
	many.WriteString("]")
	refused := []struct {
		name, body string
		want       int
	}{
		{"invalid channel after a valid event", `[{"channel":"a","data":"no"},{"channel":"a b","data":"no"}]`, http.StatusBadRequest},
		{"missing data", `[{"channel":"a","data":"no"},{"channel":"a"}]`, http.StatusBadRequest},
		{"bad event name", `[{"channel":"a","data":"no"},{"channel":"a","data":1,"event":"a\nb"}]`, http.StatusBadRequest},
		{"not an array", `{"channel":"a","data":"no"}`, http.StatusBadRequest},
		{"empty", `[]`, http.StatusBadRequest},
		{"too many events", many.String(), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			code, body := postBatch(t, ts.URL, tt.body)
			assert.Equal(t, tt.want, code, body)
			var e struct{ Error string }
			assert.NoError(t, json.Unmarshal([]byte(body), &e), "error body is JSON")
			assert.NotEmpty(t, e.Error, "error reason")
		})
	}
	// Had a refused batch published anything, the stream would see it
	// before this event, and this event's id would not follow a2's.
	code, body = postBatch(t, ts.URL, `[{"channel":"a","data":"end"}]`)
	require.Equal(t, http.StatusAccepted, code, body)
	ev = next(t, pa)
	assert.Equal(t, "end", string(ev.Data))
	assert.Equal(t, "3", ev.ID)
}

func TestResume(t *testing.T) {
	base := start(t, Config{History: 3})
	// Each case has its own channel of 5 events; history holds ids 3, 4, 5.
	tests := []struct {
		name, lastID string
		want         []string // ids of the events before the live one; "reset" for a reset
	}{
		{"within history", "3", []string{"4", "5"}},
		{"just before the oldest", "2", []string{"3", "4", "5"}},
		{"up to date", "5", nil},
		{"too old", "1", []string{"reset"}},
		{"not a number", "abc", []string{"reset"}},
		{"from the future", "99", []string{"reset"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := fmt.Sprintf("c%d", i)
			for j := range 5 {
				code, body := publish(t, base, fmt.Sprintf(`{"channel":%q,"data":"e%d"}`, ch, j+1))
				require.Equal(t, http.StatusAccepted, code, body)
			}
			p := subscribe(t, base, "channel="+ch, tt.lastID)
			for _, w := range tt.want {
				ev := next(t, p)
				if w == "reset" {
					assert.Equal(t, "reset", ev.Event)
					continue
				}
				assert.Equal(t, w, p.LastEventID())
				assert.Equal(t, "e"+w, string(ev.Data))
			}
			// The next live event follows with no gap or duplicate.
			code, body := publish(t, base, fmt.Sprintf(`{"channel":%q,"data":"live"}`, ch))
			require.Equal(t, http.StatusAccepted, code, body)
			var a struct{ ID string }
			require.NoError(t, json.Unmarshal([]byte(body), &a))
			assert.Equal(t, "6", a.ID)
			ev := next(t, p)
			assert.Equal(t, "live", string(ev.Data))
			assert.Equal(t, a.ID, ev.ID)
		})
	}
}

func TestSlowStreamIsClosed(t *testing.T) {
	s := New(Config{QueueLen: 2})
	require.NoError(t, s.Start("127.0.0.1:0"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, s.Shutdown(ctx))
	})
	base := "http://" + s.Addr()
	// A reader that keeps up must keep its stream.
	fast := subscribe(t, base, "channel=slow", "")
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "GET /events?channel=slow HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	subs := func() int {
		ch := s.channel("slow")
		ch.mu.Lock()
		defer ch.mu.Unlock()
		return len(ch.subs)
	}
	require.Eventually(t, func() bool { return subs() == 2 }, 5*time.Second, 10*time.Millisecond, "both subscribed")

	big := strings.Repeat("z", 64<<10)
	got := make(chan int, 1)
	go func() {
		n := 0
		for {
			ev, err := fast.Next()
			if err != nil || string(ev.Data) == "end" {
				got <- n
				return
			}
			n++
		}
	}()
	sent := 0
	require.Eventually(t, func() bool {
		code, body := publish(t, base, `{"channel":"slow","data":"`+big+`"}`)
		require.Equal(t, http.StatusAccepted, code, body)
		sent++
		return subs() == 1
	}, 10*time.Second, time.Millisecond, "the stalled stream is dropped")
	// One more event for the fast reader to stop on.
	code, body := publish(t, base, `{"channel":"slow","data":"end"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	assert.Equal(t, sent, <-got, "the fast reader got every event")
}

func TestMemStats(t *testing.T) {
	base := start(t, Config{})
	resp, err := http.Get(base + "/debug/memstats")
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]int64
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	for _, k := range []string{"heap_inuse", "stack_inuse", "sys", "goroutines"} {
		assert.Positive(t, m[k], k)
	}
}

func TestClusterThroughRedis(t *testing.T) {
	prefix := fmt.Sprintf("baseline-test-%d", time.Now().UnixNano())
	cfg := Config{Redis: "redis://127.0.0.1:6379/0", RedisPrefix: prefix}
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		defer rdb.Close()
		assert.NoError(t, rdb.Del(context.Background(), prefix+":id:room").Err(), "delete the test's key")
	})
	a := start(t, cfg)
	b := start(t, cfg)
	resp, err := http.Get(b + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "readyz")
	pa := subscribe(t, a, "channel=room", "")
	pb := subscribe(t, b, "channel=room", "")
	for i := range 3 {
		code, body := publish(t, a, fmt.Sprintf(`{"channel":"room","data":"m%d"}`, i))
		require.Equal(t, http.StatusAccepted, code, body)
	}
	code, body := postBatch(t, a, `[{"channel":"room","data":"m3"},{"channel":"room","data":"m4"}]`)
	require.Equal(t, http.StatusAccepted, code, body)
	assert.JSONEq(t, `{"accepted":2,"results":[{"status":202,"id":"4"},{"status":202,"id":"5"}]}`, body)
	for _, p := range []*sse.Parser{pa, pb} {
		for i := range 5 {
			ev := next(t, p)
			assert.Equal(t, fmt.Sprint(i+1), ev.ID)
			assert.Equal(t, fmt.Sprintf("m%d", i), string(ev.Data))
		}
	}
}
