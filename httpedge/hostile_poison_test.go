package httpedge_test

import (
	"time"

	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

// longestID is as long as an id the hub assigns can be ("<ms>-<seq>", two
// uint64), so a publish with it frames to exactly what the hub reckons for
// a publish without an id.
var longestID = strings.Repeat("9", 20) + "-" + strings.Repeat("9", 20)

// frameOverhead is what a one-line event with the longest id adds to its
// data: "id: " ID "\n", "data: ", "\n", and the blank line.
var frameOverhead = len("id: ") + len(longestID) + 1 + len("data: ") + 1 + 1

// publishBody marshals a publish.
func publishBody(t testing.TB, channel, data, id string) string {
	t.Helper()
	m := map[string]any{"channel": channel, "data": data}
	if id != "" {
		m["id"] = id
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

// poisonHub is a memory- or cluster-mode hub with a stream on channel "p"
// and a count of its stream closes.
type poisonHub struct {
	s      *hubServer
	c      *client
	closes *closeCounter
}

func newPoisonHub(t *testing.T, mode string, cfg actors.Config, edge httpedge.Config) *poisonHub {
	t.Helper()
	closes := newCloseCounter()
	cfg.Observer, cfg.Heartbeat = closes, -1
	var s *hubServer
	if mode == "cluster" {
		s = newClusterNode(t, hostilePrefix(t), cfg, edge).hubServer
	} else {
		s = newHubServer(t, cfg, edge)
	}
	return &poisonHub{s: s, c: s.subscribe(t, "channel=p", nil), closes: closes}
}

// requireHealthy publishes a marker and requires it to be the stream's
// next event, with no stream cut meanwhile: whatever was refused before
// reached nobody, and the subscriber is still there.
func (p *poisonHub) requireHealthy(t *testing.T, marker string) {
	t.Helper()
	p.s.mustPublish(t, "p", marker)
	assert.Equal(t, marker, string(p.c.Next(t).Data), "the next event on the stream")
	assert.Zero(t, p.closes.count(actors.SlowConsumer), "streams cut as slow consumers")
	assert.Zero(t, p.s.hub.OpenStreams()-1, "the stream is still open")
}

// requireTooLarge posts body and requires a 413 whose reason names the
// stream queue bound.
func requireTooLarge(t *testing.T, base, body string, bound int) {
	t.Helper()
	status, reason, _ := postRaw(t, base, body)
	require.Equal(t, http.StatusRequestEntityTooLarge, status, "POST /publish of %d bytes: %s", len(body), reason)
	assert.Contains(t, reason, strconv.Itoa(bound)+"-byte bound", "the reason names the limit")
}

// TestHostilePoisonEvents: no event is accepted that a healthy subscriber
// cannot receive. A frame at the stream queue bound (MaxQueueBytes) is
// delivered under every overflow policy; a byte over is 413, as is data of
// line breaks that frames past it; a Go caller gets ErrEventTooLarge; an
// oversize message put on Redis directly is dropped and counted, and cuts
// nobody. All in memory and cluster mode alike.
func TestHostilePoisonEvents(t *testing.T) {
	for _, mode := range []string{"memory", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			t.Run("bound under each policy", func(t *testing.T) {
				for _, policy := range []actors.Overflow{actors.Disconnect, actors.DropOldest, actors.DropNewest} {
					t.Run(policy.String(), func(t *testing.T) {
						// A bound well under the body limit, so that it alone
						// decides (and the test stays fast under -race);
						// "defaults" below runs at the default 1 MiB.
						p := newPoisonHub(t, mode, actors.Config{Overflow: policy, MaxQueueBytes: 64 << 10}, httpedge.Config{})
						bound := p.s.hub.MaxFrame()
						require.Equal(t, 64<<10, bound, "MaxFrame is MaxQueueBytes")
						data := strings.Repeat("x", bound-frameOverhead)
						require.Equal(t, bound, sse.EncodedLen(sse.Event{ID: longestID, Data: []byte(data)}))

						p.s.mustPublish(t, "p", data, "id", longestID)
						ev := p.c.Next(t)
						assert.Equal(t, longestID, ev.ID)
						assert.Equal(t, len(data), len(ev.Data), "a frame of exactly %d bytes arrives whole", bound)
						p.s.mustPublish(t, "p", data) // sized as if its id were the longest
						assert.Equal(t, len(data), len(p.c.Next(t).Data))

						requireTooLarge(t, p.s.srv.URL, publishBody(t, "p", data+"x", longestID), bound)
						requireTooLarge(t, p.s.srv.URL, publishBody(t, "p", data+"x", ""), bound)
						p.requireHealthy(t, "after the refusal")
					})
				}
			})

			t.Run("defaults", func(t *testing.T) {
				p := newPoisonHub(t, mode, actors.Config{}, httpedge.Config{})
				bound := p.s.hub.MaxFrame()
				require.Equal(t, 1<<20, bound, "MaxFrame is MaxQueueBytes, 1 MiB by default")
				// Plain data: the frame bound binds before the 1 MiB body
				// limit does.
				data := strings.Repeat("x", bound-frameOverhead)
				largest := publishBody(t, "p", data, "")
				p.s.mustPublish(t, "p", data)
				assert.Equal(t, len(data), len(p.c.Next(t).Data))
				requireTooLarge(t, p.s.srv.URL, publishBody(t, "p", data+"x", ""), bound)
				t.Logf("%s mode: largest accepted body of plain data: %d bytes (data %d bytes)", mode, len(largest), len(data))

				// Data of line breaks: each LF is a "data:" line of its own,
				// six bytes, so a body of 700 KB frames to 2.1 MB.
				n := (bound - (len("id: ") + len(longestID) + 1) - 1 - len("data:\n")) / len("data:\n")
				lfs := strings.Repeat("\n", n)
				largestLF := publishBody(t, "p", lfs, "")
				p.s.mustPublish(t, "p", lfs)
				assert.Equal(t, lfs, string(p.c.Next(t).Data), "%d line breaks arrive as sent", n)
				requireTooLarge(t, p.s.srv.URL, publishBody(t, "p", lfs+"\n", ""), bound)
				poison := publishBody(t, "p", strings.Repeat("\n", 350_000), "")
				require.Less(t, len(poison), 1<<20, "the newline body is within the body limit")
				requireTooLarge(t, p.s.srv.URL, poison, bound)
				t.Logf("%s mode: largest accepted body of line breaks: %d bytes (%d LF, frame %d bytes); a %d-byte body of 350,000 LF is 413",
					mode, len(largestLF), n, sse.EncodedLen(sse.Event{ID: longestID, Data: []byte(lfs)}), len(poison))
				p.requireHealthy(t, "after the newlines")
			})

			t.Run("go caller", func(t *testing.T) {
				p := newPoisonHub(t, mode, actors.Config{}, httpedge.Config{})
				data := []byte(strings.Repeat("x", p.s.hub.MaxFrame()-frameOverhead+1))
				_, err := p.s.hub.PublishOnce(context.Background(), "p", sse.Event{Data: data}, "")
				require.ErrorIs(t, err, actors.ErrEventTooLarge, "Hub.PublishOnce of a frame one byte over")
				_, err = p.s.hub.PublishOnce(context.Background(), "p", sse.Event{Data: []byte("x"), Event: actors.ResetEvent}, "")
				require.ErrorIs(t, err, actors.ErrInvalidPublish, "Hub.PublishOnce of a reset event")
				_, err = p.s.hub.PublishOnce(context.Background(), "p", sse.Event{Data: []byte("a\xffb")}, "")
				require.ErrorIs(t, err, actors.ErrInvalidPublish, "Hub.PublishOnce of data that is not UTF-8, in either mode")
				p.requireHealthy(t, "after the Go calls")
			})
		})
	}
}

// An oversize message put on the Redis channel directly (by another
// program, or a node with a bigger bound) is dropped and counted on every
// node, and cuts no subscriber; so are envelopes with a reserved event
// name, as malformed. Later events still arrive.
func TestHostilePoisonEventsFromRedis(t *testing.T) {
	prefix := hostilePrefix(t)
	cfg := actors.Config{Heartbeat: -1, HeartbeatEvent: hostileBeat}
	var nodes []*clusterNode
	var closes []*closeCounter
	var streams []*client
	for range 2 {
		cc := newCloseCounter()
		c := cfg
		c.Observer = cc
		n := newClusterNode(t, prefix, c, httpedge.Config{})
		nodes, closes = append(nodes, n), append(closes, cc)
		streams = append(streams, n.subscribe(t, "channel=p", nil))
	}
	rdb := hostileRedisClient(t)
	ctx := context.Background()
	envelope := func(event, data string) string {
		b, err := json.Marshal(map[string]any{"v": 1, "channel": "p", "id": "raw", "event": event, "data": data})
		require.NoError(t, err)
		return string(b)
	}
	rawPublish := func(payload string) {
		t.Helper()
		// Each relay subscribes to "p" once its stream joined (redisrelay
		// per-channel interest): wait for both confirmations.
		require.Eventually(t, func() bool { return nodes[0].relay.Listening("p") && nodes[1].relay.Listening("p") }, 5*time.Second, 5*time.Millisecond)
		receivers, err := rdb.Publish(ctx, nodes[0].relay.PubSubChannel("p"), payload).Result()
		require.NoError(t, err, "PUBLISH")
		require.EqualValues(t, 2, receivers, "both relays got it")
	}
	rawPublish(envelope("", strings.Repeat("x", 3<<20)))
	rawPublish(envelope(actors.ResetEvent, `{"reason":"forged"}`))
	rawPublish(envelope(hostileBeat, ""))
	rawPublish(envelope("squall-ctl", ""))

	nodes[0].mustPublish(t, "p", "after")
	for i, n := range nodes {
		assert.Equal(t, "after", string(streams[i].Next(t).Data), "node %d: the next event is the one after the poison", i)
		assert.Zero(t, closes[i].count(actors.SlowConsumer), "node %d: streams cut", i)
		assert.Equal(t, 1, n.hub.OpenStreams(), "node %d: the stream is still open", i)
		requireMetrics(t, n.srv.URL, map[string]float64{
			`squall_relay_dropped_total{reason="oversize"}`:  1,
			`squall_relay_dropped_total{reason="malformed"}`: 3,
		})
		assert.EqualValues(t, 1, n.relay.Oversize(), "node %d", i)
	}
	// The poison left nothing behind: a small raw event goes through.
	rawPublish(envelope("note", "small"))
	for i := range nodes {
		ev := streams[i].Next(t)
		assert.Equal(t, "small", string(ev.Data), "node %d", i)
		assert.Equal(t, "note", ev.Event, "node %d", i)
	}
}
