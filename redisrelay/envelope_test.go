package redisrelay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// What a Python SDK worker (SSEBroker(redis=…)) publishes: a plain PUBLISH
// of its four fields, with no pos. Each reaches Squall's subscribers live,
// byte for byte as the SDK's own workers would write it (modulo the
// documented encoder differences, none of which these exercise).
func TestPythonSDKMessagesReachSubscribers(t *testing.T) {
	a, _ := twoNodes(t, redisrelay.Config{})
	c := a.subscribe(t, "channel=feed", "")
	a.requireListening(t, "feed") // a plain PUBLISH is in no history: only a confirmed subscription gets it
	rdb := rawClient(t, sharedRedis)
	tests := []struct {
		name, payload, frame string
	}{
		{"object data, named event", `{"data": {"a": 1, "b": [1, 2]}, "event": "notice", "id": null, "retry": null}`,
			"event: notice\ndata: {\"a\":1,\"b\":[1,2]}\n\n"},
		{"string data is raw", `{"data": "hello \u00e9\nworld", "event": null, "id": null, "retry": null}`,
			"data: hello é\ndata: world\n\n"},
		{"id and retry", `{"data": "x", "event": "e", "id": "42", "retry": 3000}`,
			"id: 42\nevent: e\nretry: 3000\ndata: x\n\n"},
		{"null data", `{"data": null, "event": null, "id": null, "retry": null}`, "data: null\n\n"},
		{"retry 0 is written", `{"data": "r", "retry": 0}`, "retry: 0\ndata: r\n\n"},
		{"number data", `{"data": 3.5}`, "data: 3.5\n\n"},
		{"empty id is no id", `{"data": "y", "id": ""}`, "data: y\n\n"},
		{"extra fields are ignored", `{"data": "z", "source": "worker-3"}`, "data: z\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, rdb.Publish(t.Context(), a.relay.PubSubChannel("feed"), tt.payload).Err())
			assert.Equal(t, tt.frame, c.NextFrame(t))
		})
	}
	assert.Zero(t, a.relay.Malformed())
}

// A Python SDK worker reads "data", "event", "id" and "retry" from whatever
// arrives on sse:*; Squall's envelope carries them with the SDK's types.
func TestSquallEnvelopeIsPythonCompatible(t *testing.T) {
	a, _ := twoNodes(t, redisrelay.Config{})
	ps := rawClient(t, sharedRedis).PSubscribe(t.Context(), a.relay.Prefix()+":*")
	defer ps.Close()
	_, err := ps.Receive(t.Context()) // the subscription's confirmation
	require.NoError(t, err)
	receive := func() map[string]any {
		t.Helper()
		msg, err := ps.ReceiveMessage(t.Context())
		require.NoError(t, err)
		assert.Equal(t, a.relay.PubSubChannel("orders"), msg.Channel)
		var env map[string]any
		require.NoError(t, json.Unmarshal([]byte(msg.Payload), &env), "envelope is JSON: %s", msg.Payload)
		return env
	}

	id, err := a.relay.Publish(t.Context(), "orders", sse.Event{Data: []byte(`{"n":1}`), Event: "order_update", Retry: 3 * time.Second})
	require.NoError(t, err)
	env := receive()
	assert.Equal(t, map[string]any{
		"v": float64(1), "channel": "orders", "pos": id, "id": id,
		"data": `{"n":1}`, "event": "order_update", "retry": float64(3000),
	}, env)

	id, err = a.relay.Publish(t.Context(), "orders", sse.Event{Data: []byte("plain\ntext \"q\" \x01"), ID: "evt-7"})
	require.NoError(t, err)
	assert.Equal(t, "evt-7", id)
	env = receive()
	assert.Equal(t, "evt-7", env["id"])
	assert.Equal(t, "plain\ntext \"q\" \x01", env["data"], "data is the event's bytes as a JSON string")
	assert.Nil(t, env["event"], "no event name is null")
	assert.Nil(t, env["retry"], "no retry is null")

	_, err = a.relay.Publish(t.Context(), "orders", sse.Event{Data: []byte("now"), Retry: sse.RetryZero})
	require.NoError(t, err)
	env = receive()
	assert.Equal(t, float64(0), env["retry"], "RetryZero travels as \"retry\": 0, not null")
	_, isPos := actors.ParsePos(env["pos"].(string))
	assert.True(t, isPos, "pos is the stream id: %v", env["pos"])
	for _, k := range []string{"data", "event", "id", "retry"} {
		assert.Contains(t, env, k, "the Python SDK reads %q", k)
	}
}

// syncBuffer is a log sink safe for the relay actor and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMalformedMessagesAreCountedAndDropped(t *testing.T) {
	// With per-channel interest a node subscribes only to valid channel
	// names its streams are on, so messages on other names never reach it;
	// the pattern subscription gets them and must refuse them.
	for _, interest := range []redisrelay.Interest{redisrelay.InterestChannels, redisrelay.InterestAll} {
		t.Run(fmt.Sprint(interest), func(t *testing.T) { testMalformed(t, interest) })
	}
}

func testMalformed(t *testing.T, interest redisrelay.Interest) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	prefix := newPrefix(t, sharedRedis)
	a := newNode(t, redisrelay.Config{URL: sharedRedis, Prefix: prefix, Logger: logger, LogInterval: time.Hour, Interest: interest}, actors.Config{})
	a.requireReady(t)
	c := a.subscribe(t, "channel=feed", "")
	a.requireChannels(t, 1)
	a.requireListening(t, "feed")
	rdb := rawClient(t, sharedRedis)
	ch := a.relay.PubSubChannel("feed")
	bad := []struct{ name, channel, payload string }{
		{"not JSON", ch, "hello"},
		{"truncated JSON", ch, `{"data": "x"`},
		{"JSON array", ch, `[1, 2, 3]`},
		{"JSON string", ch, `"data"`},
		{"missing data", ch, `{"event": "x", "id": "1"}`},
		{"id with newline", ch, `{"data": "x", "id": "1\nevent: evil"}`},
		{"id with NUL", ch, `{"data": "x", "id": "1\u0000"}`},
		{"event with CR", ch, `{"data": "x", "event": "a\rb"}`},
		{"id not a string", ch, `{"data": "x", "id": 42}`},
		{"event not a string", ch, `{"data": "x", "event": ["a"]}`},
		{"negative retry", ch, `{"data": "x", "retry": -1}`},
		{"fractional retry", ch, `{"data": "x", "retry": 1.5}`},
		{"retry as string", ch, `{"data": "x", "retry": "3000"}`},
		{"unknown version", ch, `{"v": 2, "data": "x"}`},
		{"pos not a stream id", ch, `{"data": "x", "pos": "yesterday"}`},
		{"channel differs", ch, `{"data": "x", "channel": "other"}`},
	}
	if interest == redisrelay.InterestAll {
		bad = append(bad, []struct{ name, channel, payload string }{
			{"invalid channel name", prefix + ":bad name", `{"data": "x"}`},
			{"empty channel name", prefix + ":", `{"data": "x"}`},
		}...)
	}
	for _, b := range bad {
		require.NoError(t, rdb.Publish(t.Context(), b.channel, b.payload).Err(), b.name)
	}
	require.NoError(t, rdb.Publish(t.Context(), ch, `{"data": "good"}`).Err())
	assert.Equal(t, "good", string(c.Next(t).Data), "the good message after the garbage still arrives, and nothing before it")
	require.Eventually(t, func() bool { return a.relay.Malformed() == uint64(len(bad)) }, wait, time.Millisecond,
		"malformed count %d, want %d", a.relay.Malformed(), len(bad))
	assert.Equal(t, 1, strings.Count(logs.String(), "malformed messages dropped"), "logged once per interval, not per message:\n%s", logs)
	assert.Empty(t, c.Events)
	require.NoError(t, a.relay.Ready(), "garbage does not hurt the subscription")
}

// Replay reads events back from any node, as published.
func TestReplayReturnsEventsWithPositions(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{})
	ctx := context.Background()
	first, err := a.relay.Publish(ctx, "r", sse.Event{Data: []byte("0")})
	require.NoError(t, err)
	_, err = a.relay.Publish(ctx, "r", sse.Event{Data: []byte("1"), Event: "named", ID: "given", Retry: 1500 * time.Millisecond})
	require.NoError(t, err)
	third, err := a.relay.Publish(ctx, "r", sse.Event{Data: []byte("2\n")})
	require.NoError(t, err)

	r, err := b.relay.Replay(ctx, actors.ReplayRequest{Channel: "r", LastEventID: first})
	require.NoError(t, err)
	require.Equal(t, actors.ReplayFound, r.Status)
	require.Len(t, r.Events, 2)
	assert.Equal(t, sse.Event{Data: []byte("1"), Event: "named", ID: "given", Retry: 1500 * time.Millisecond}, r.Events[0].Event)
	assert.Equal(t, sse.Event{Data: []byte("2\n"), ID: third}, r.Events[1].Event)
	assert.Equal(t, third, r.Events[1].Pos.String())
	assert.True(t, r.Events[0].Pos.Less(r.Events[1].Pos))

	r, err = b.relay.Replay(ctx, actors.ReplayRequest{Channel: "r", LastEventID: "given"})
	require.NoError(t, err)
	require.Equal(t, actors.ReplayFound, r.Status)
	require.Len(t, r.Events, 1, "after a publisher's id")
	assert.Equal(t, third, r.Events[0].Event.ID)
	assert.True(t, r.Point.Less(r.Events[0].Pos), "the point is the publisher's event, just before")
	assert.False(t, r.Point.IsZero())

	r, err = b.relay.Replay(ctx, actors.ReplayRequest{Channel: "r", LastEventID: third})
	require.NoError(t, err)
	thirdPos, _ := actors.ParsePos(third)
	assert.Equal(t, actors.Replay{Status: actors.ReplayFound, Point: thirdPos, Events: []actors.ReplayEvent{}}, r, "after the newest: nothing")

	r, err = b.relay.Replay(ctx, actors.ReplayRequest{Channel: "never-published", LastEventID: first})
	require.NoError(t, err)
	assert.Equal(t, actors.ReplayExpired, r.Status, "a stream id on an empty channel is older than what is kept")
}
