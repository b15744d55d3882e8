package httpedge_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// hostileBeat is the heartbeat event name the strictness hubs run with, so
// that its reservation is exercised.
const hostileBeat = "ping"

// nested is a publish body whose data nests depth-1 arrays, so that the
// body as a whole nests depth levels.
func nested(depth int) string {
	return `{"channel":"in","data":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

// strictCases pin the publish body's strictness: each refused body is a 400
// whose reason contains reason; the 202 cases are the controls that show
// the refusals are not a blanket one.
var strictCases = []struct {
	name   string
	body   string
	status int
	reason string
}{
	{"trailing brace", `{"channel":"in","data":1}}`, 400, "after the JSON value"},
	{"trailing bracket", `{"channel":"in","data":1}]`, 400, "after the JSON value"},
	{"trailing object", `{"channel":"in","data":1} {"channel":"in","data":2}`, 400, "after the JSON value"},
	{"trailing garbage", `{"channel":"in","data":1}x`, 400, "after the JSON value"},
	{"trailing whitespace is fine", "{\"channel\":\"in\",\"data\":1}\r\n\t ", 202, ""},
	{"invalid UTF-8 in data string", "{\"channel\":\"in\",\"data\":\"a\xffb\"}", 400, "UTF-8"},
	{"invalid UTF-8 in nested string", "{\"channel\":\"in\",\"data\":{\"k\":[\"\xc3\"]}}", 400, "UTF-8"},
	{"invalid UTF-8 in a name", "{\"channel\":\"in\",\"data\":{\"\xed\xa0\x80\":1}}", 400, "UTF-8"},
	{"invalid UTF-8 outside strings", "{\"channel\":\"in\",\"data\":1\xff}", 400, "UTF-8"},
	{"invalid UTF-8 after the value", "{\"channel\":\"in\",\"data\":1}\xff", 400, "UTF-8"},
	{"invalid UTF-8 in event", "{\"channel\":\"in\",\"data\":1,\"event\":\"\xfe\"}", 400, "UTF-8"},
	{"lone surrogate escape", `{"channel":"in","data":"\ud800"}`, 400, "surrogate"},
	{"valid surrogate pair is fine", `{"channel":"in","data":"\ud83d\ude00"}`, 202, ""},
	{"duplicate channel", `{"channel":"in","channel":"other","data":1}`, 400, "duplicate"},
	{"duplicate data", `{"channel":"in","data":1,"data":2}`, 400, "duplicate"},
	{"duplicate key inside data", `{"channel":"in","data":{"k":1,"k":2}}`, 400, "duplicate"},
	{"same name other case", `{"channel":"in","Channel":"other","data":1}`, 400, "unknown field"},
	{"name in other case", `{"CHANNEL":"in","data":1}`, 400, "unknown field"},
	{"nesting at the bound", nested(httpedge.MaxPublishDepth), 202, ""},
	{"nesting over the bound", nested(httpedge.MaxPublishDepth + 1), 400, "deeper than 64"},
	{"deep nesting", nested(10_000), 400, "deeper than 64"},
	{"event reset", `{"channel":"in","data":1,"event":"reset"}`, 400, "reserved"},
	{"event heartbeat name", `{"channel":"in","data":1,"event":"` + hostileBeat + `"}`, 400, "reserved"},
	{"event reserved prefix", `{"channel":"in","data":1,"event":"squall-gap"}`, 400, "reserved"},
	{"event bare prefix", `{"channel":"in","data":1,"event":"squall-"}`, 400, "reserved"},
	{"event near a reserved name is fine", `{"channel":"in","data":1,"event":"Reset"}`, 202, ""},
	{"event with reserved suffix is fine", `{"channel":"in","data":1,"event":"my-squall-x"}`, 202, ""},
	{"plain publish is fine", `{"channel":"in","data":{"a":[1,"é"]},"event":"e","id":"7","retry":10}`, 202, ""},
}

// postRaw posts body to /publish and returns the status and the JSON reason
// of a refusal.
func postRaw(t testing.TB, base, body string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(base+"/publish", "application/json", strings.NewReader(body))
	require.NoError(t, err, "POST /publish")
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), "the answer is JSON: %s", raw)
	reason, _ := out["error"].(string)
	return resp.StatusCode, reason, resp.Header
}

// strictHubs are a memory-mode and a cluster-mode hub set up alike.
func strictHubs(t testing.TB) map[string]*hubServer {
	t.Helper()
	cfg := actors.Config{Heartbeat: -1, HeartbeatEvent: hostileBeat}
	return map[string]*hubServer{
		"memory":  newHubServer(t, cfg, httpedge.Config{}),
		"cluster": newClusterNode(t, hostilePrefix(t), cfg, httpedge.Config{}).hubServer,
	}
}

// TestHostilePublishInput: the publish body is strict, with the same
// answer in memory and cluster mode. Trailing bytes, invalid UTF-8 in or
// out of strings, duplicate or case-folded member names, nesting past
// MaxPublishDepth and the hub's reserved event names are each a 400 with a
// reason, never a 202 with a guess and never a 503 (which a retrying
// publisher would repeat forever). Nothing refused reaches a stream.
func TestHostilePublishInput(t *testing.T) {
	hubs := strictHubs(t)
	streams := map[string]*client{}
	for mode, s := range hubs {
		streams[mode] = s.subscribe(t, "channel=in", nil)
	}
	accepted := 0
	for _, tc := range strictCases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]int{}
			for _, mode := range []string{"memory", "cluster"} {
				status, reason, header := postRaw(t, hubs[mode].srv.URL, tc.body)
				got[mode] = status
				assert.Equal(t, tc.status, status, "%s mode: POST /publish %q: %s", mode, tc.body, reason)
				assert.Empty(t, header.Get("Retry-After"), "%s mode: a client mistake is not worth a retry", mode)
				if tc.status != http.StatusAccepted {
					assert.Contains(t, reason, tc.reason, "%s mode: the reason of POST /publish %q", mode, tc.body)
				}
			}
			assert.Equal(t, got["memory"], got["cluster"], "memory and cluster mode answer alike")
		})
		if tc.status == http.StatusAccepted {
			accepted++
		}
	}
	// Exactly the accepted bodies reached the streams, then a marker.
	for mode, s := range hubs {
		s.mustPublish(t, "in", "marker")
		evs := streams[mode].NextN(t, accepted+1)
		assert.Equal(t, "marker", string(evs[accepted].Data), "%s mode: only the %d accepted events came before the marker", mode, accepted)
		for _, ev := range evs {
			assert.False(t, actors.ReservedEvent(ev.Event) || ev.Event == hostileBeat, "%s mode: a reserved event %q reached a stream", mode, ev.Event)
		}
	}
}

// corrupting is a hub's cluster that hands the relay data no JSON envelope
// can carry, as a Go caller of the relay might: the relay refuses it.
// (Checked by the hub, an event would not get that far: Hub.Check refuses
// it first.)
type corrupting struct{ *redisrelay.Relay }

func (c corrupting) PublishChecked(ctx context.Context, checked actors.Checked, key string) (actors.Published, error) {
	ev := checked.Event()
	ev.Data = append(ev.Data[:len(ev.Data):len(ev.Data)], 0xff)
	return c.PublishOnce(ctx, checked.Channel(), ev, key)
}

// A refusal by the publisher itself because of the event (the relay's
// ErrNotUTF8 in cluster mode) is a 400 at the edge, not a 503 with
// Retry-After: the same publish would be refused forever.
func TestHostilePublishInputRefusedByRelayIs400(t *testing.T) {
	prefix := hostilePrefix(t)
	n := newClusterNode(t, prefix, actors.Config{Heartbeat: -1}, httpedge.Config{})
	_, err := n.relay.Publish(context.Background(), "in", sse.Event{Data: []byte("a\xffb")})
	require.ErrorIs(t, err, redisrelay.ErrNotUTF8, "relay's Publish of invalid UTF-8")
	require.ErrorIs(t, err, actors.ErrInvalidPublish, "ErrNotUTF8 is an invalid publish")
	_, err = n.hub.Publish(context.Background(), "in", sse.Event{Data: []byte("a\xffb")})
	require.ErrorIs(t, err, actors.ErrInvalidPublish, "cluster hub's Publish of invalid UTF-8")

	edge := newHubServer(t, actors.Config{Cluster: corrupting{n.relay}}, httpedge.Config{})
	status, reason, header := postRaw(t, edge.srv.URL, `{"channel":"in","data":"x"}`)
	assert.Equal(t, http.StatusBadRequest, status, "POST /publish refused by the relay: %s", reason)
	assert.Contains(t, reason, "UTF-8")
	assert.Empty(t, header.Get("Retry-After"))
}

// FuzzHostilePublishInput runs any body against a memory-mode and a
// cluster-mode hub: the two answer with the same status, and that status
// is 202 or a 4xx with a JSON reason. Seeded with strictCases.
func FuzzHostilePublishInput(f *testing.F) {
	for _, tc := range strictCases {
		f.Add([]byte(tc.body))
	}
	hubs := strictHubs(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		mem, reason, _ := postRaw(t, hubs["memory"].srv.URL, string(body))
		clu, creason, _ := postRaw(t, hubs["cluster"].srv.URL, string(body))
		require.Equal(t, mem, clu, "memory (%q) and cluster (%q) mode answer %q alike", reason, creason, body)
		if mem != http.StatusAccepted {
			require.True(t, mem >= 400 && mem < 500, "status %d for %q: %s", mem, body, reason)
			require.NotEmpty(t, reason)
		}
	})
}
