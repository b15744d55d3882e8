package httpedge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/sse"
)

// The HTTP API is fuzzed against a running hub: whatever a client sends, the
// answer is a 2xx or a 4xx with a JSON reason, never a 5xx or a panic, and
// nothing sent can add a line to anyone's stream.

func FuzzPublishBody(f *testing.F) {
	for _, seed := range []string{
		`{"channel":"a","data":1}`, `{"channel":"a","data":"x","event":"e","id":"1","retry":5}`,
		`{"channel":"a\n","data":1}`, `{"channel":"a","data":{"k":[1,2,{"z":null}]}}`, `{}`, `[]`, `null`, ``,
		`{"channel":"a","data":1,"id":"x\u0000"}`, `{"channel":"a","data":1}{`, `{"channel":1,"data":1}`,
		`{"channel":"a","data":1,"retry":1e3}`, `{"channel":"a","data":1,"retry":99999999999999999999}`,
		"\xff\xfe", `{"channel":"a","data":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	s := newHubServer(f, actors.Config{}, httpedge.Config{MaxBody: 4096})
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := http.Post(s.srv.URL+"/publish", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		switch resp.StatusCode {
		case http.StatusAccepted:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e map[string]string
			require.NoError(t, json.Unmarshal(raw, &e), "a JSON reason: %s", raw)
			require.NotEmpty(t, e["error"])
		default:
			t.Fatalf("status %d for body %q: %s", resp.StatusCode, body, raw)
		}
	})
}

func FuzzPublishFields(f *testing.F) {
	f.Add("e", "1", "data", int64(0))
	f.Add("e\nid: 9", "x", "a\r\nb", int64(1))
	f.Add("", "id\x00", "\n\n\n", int64(-1))
	f.Add("message", "7\r", "data: injected\n\nevent: evil", int64(3000))
	f.Add("\u2028", "\u0085", "\u2028line\u0085", int64(10))
	f.Add("reset", "1", "forged gap", int64(0))
	f.Add("squall-x", "1", "forged control", int64(0))
	s := newHubServer(f, actors.Config{Heartbeat: -1}, httpedge.Config{})
	raw := ssetest.Subscribe(f, s.srv.URL+"/events?channel=fz", ssetest.Options{Frames: true})
	f.Fuzz(func(t *testing.T, event, id, data string, retry int64) {
		body := map[string]any{"channel": "fz", "data": data, "event": event, "retry": retry}
		if id != "" {
			body["id"] = id
		}
		b, err := json.Marshal(body)
		require.NoError(t, err)
		// JSON carries no invalid UTF-8: compare with what was really sent.
		var sent struct{ Event, ID, Data string }
		require.NoError(t, json.Unmarshal(b, &sent))
		event, id, data = sent.Event, sent.ID, sent.Data
		resp, err := http.Post(s.srv.URL+"/publish", "application/json", bytes.NewReader(b))
		require.NoError(t, err)
		resp.Body.Close()
		valid := sse.ValidName(event) == nil && sse.ValidID(id) == nil && retry >= 0 && time.Duration(retry) <= sse.MaxRetry/time.Millisecond &&
			!actors.ReservedEvent(event)
		if !valid {
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "publish %s", b)
			return
		}
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "publish %s", b)
		// The event arrives whole, as sent, and every line of it is a
		// field of its own.
		frame := raw.NextFrame(t)
		_ = raw.Next(t) // the same event, parsed from the whole stream: read so the buffer never fills
		p := sse.NewParser(strings.NewReader(frame))
		ev, err := p.Next()
		require.NoError(t, err, "frame %q", frame)
		require.Equal(t, event, ev.Event)
		if id != "" {
			require.Equal(t, id, ev.ID)
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(data)
		require.Equal(t, want, string(ev.Data))
		fields := map[string]int{}
		for _, line := range strings.Split(strings.TrimSuffix(frame, "\n\n"), "\n") {
			name, _, _ := strings.Cut(line, ":")
			require.Contains(t, []string{"id", "event", "retry", "data"}, name, "line %q of frame %q", line, frame)
			fields[name]++
		}
		require.LessOrEqual(t, fields["id"], 1)
		require.LessOrEqual(t, fields["event"], 1)
	})
}

func FuzzSubscribe(f *testing.F) {
	for _, seed := range [][2]string{
		{"channel=a", ""}, {"channel=a&channel=b", "a=1&b=2"}, {"channel=%0A", ""}, {"", "1"},
		{"channel=a&lastEventId=%00", ""}, {"channel=" + strings.Repeat("x", 300), ""}, {"channel=a&channel=a", "\xff"},
		{"channel=a;b", ""}, {"%zz", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	s := newHubServer(f, actors.Config{}, httpedge.Config{})
	f.Fuzz(func(t *testing.T, query, lastID string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+"/events?"+query, nil)
		if err != nil {
			return // not a URL a client could send
		}
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return // net/http refused to send the header
		}
		defer resp.Body.Close()
		require.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, resp.StatusCode, "GET /events?%s Last-Event-ID %q", query, lastID)
		if resp.StatusCode == http.StatusOK {
			vals, _ := url.ParseQuery(query)
			require.NotEmpty(t, vals["channel"])
		}
	})
}
