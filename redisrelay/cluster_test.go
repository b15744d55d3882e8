package redisrelay_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// twoNodes starts two hubs sharing one Redis and one prefix.
func twoNodes(t *testing.T, rc redisrelay.Config) (*node, *node) {
	t.Helper()
	if rc.URL == "" {
		rc.URL = sharedRedis
	}
	if rc.Prefix == "" {
		rc.Prefix = newPrefix(t, rc.URL)
	}
	a := newNode(t, rc, actors.Config{})
	b := newNode(t, rc, actors.Config{})
	a.requireReady(t)
	b.requireReady(t)
	return a, b
}

func TestTwoHubsSeeOneOrder(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{})
	ca := a.subscribe(t, "channel=room", "")
	cb := b.subscribe(t, "channel=room", "")
	a.requireChannels(t, 1)
	b.requireChannels(t, 1)

	const each = 150
	var wg sync.WaitGroup
	ids := make([][]string, 2)
	for i, n := range []*node{a, b} {
		wg.Go(func() {
			for k := range each {
				ids[i] = append(ids[i], n.mustPublish(t, "room", fmt.Sprintf("%c-%d", 'a'+i, k)))
			}
		})
	}
	wg.Wait()

	gotA := ca.NextN(t, 2*each)
	gotB := cb.NextN(t, 2*each)
	assert.Equal(t, ssetest.Data(gotA), ssetest.Data(gotB), "both hubs deliver one order")
	assert.Equal(t, ssetest.IDs(gotA), ssetest.IDs(gotB), "both hubs send the same ids")
	assert.ElementsMatch(t, append(ids[0], ids[1]...), ssetest.IDs(gotA), "the ids are those publish answered")

	// Each publisher's events keep their order, and ids grow.
	var fromA, fromB []string
	for i, ev := range gotA {
		if strings.HasPrefix(string(ev.Data), "a-") {
			fromA = append(fromA, string(ev.Data))
		} else {
			fromB = append(fromB, string(ev.Data))
		}
		if i > 0 {
			prev, ok1 := actors.ParsePos(gotA[i-1].ID)
			cur, ok2 := actors.ParsePos(ev.ID)
			require.True(t, ok1 && ok2, "assigned ids are stream ids: %q", ev.ID)
			assert.True(t, prev.Less(cur), "ids grow: %s then %s", prev, cur)
		}
	}
	for i := range each {
		require.Equal(t, fmt.Sprintf("a-%d", i), fromA[i])
		require.Equal(t, fmt.Sprintf("b-%d", i), fromB[i])
	}
	assert.Empty(t, ca.Events, "nothing more on A")
	assert.Empty(t, cb.Events, "nothing more on B")
}

func TestPublisherIDsAndFieldsCrossHubs(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{})
	cb := b.subscribe(t, "channel=orders", "")
	b.requireChannels(t, 1)
	id := a.mustPublish(t, "orders", map[string]any{"n": 1}, "event", "order_update", "id", "42", "retry", 3000)
	assert.Equal(t, "42", id)
	assert.Equal(t, "id: 42\nevent: order_update\nretry: 3000\ndata: {\"n\":1}\n\n", cb.NextFrame(t))
	a.mustPublish(t, "orders", "two\nlines")
	f := cb.NextFrame(t)
	assert.Regexp(t, `^id: \d+-\d+\ndata: two\ndata: lines\n\n$`, f)
}

func TestPublishValidates(t *testing.T) {
	a, _ := twoNodes(t, redisrelay.Config{})
	tests := []struct {
		name, channel string
		ev            func() (string, error)
		want          error
	}{
		{name: "bad channel", want: sse.ErrInvalidChannel, ev: func() (string, error) {
			return a.relay.Publish(t.Context(), "no spaces", evData("x"))
		}},
		{name: "data not UTF-8", want: redisrelay.ErrNotUTF8, ev: func() (string, error) {
			return a.relay.Publish(t.Context(), "c", evData("\xff"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ev()
			assert.ErrorIs(t, err, tt.want)
			assert.ErrorIs(t, err, actors.ErrInvalidPublish, "an input refused by Publish is a 400 at the edge")
		})
	}
}

// A Go program publishes with Hub.Publish in cluster mode exactly as in
// memory mode; the event goes through Redis and reaches both hubs.
func TestHubPublishGoesThroughTheCluster(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{})
	ca := a.subscribe(t, "channel=news", "")
	cb := b.subscribe(t, "channel=news", "")
	a.requireChannels(t, 1)
	b.requireChannels(t, 1)

	ev, err := sse.New("hello", sse.WithEvent("headline"))
	require.NoError(t, err)
	id, err := a.hub.Publish(t.Context(), "news", ev)
	require.NoError(t, err)
	_, isPos := actors.ParsePos(id)
	require.True(t, isPos, "the id is the Redis stream entry id: %q", id)
	for _, c := range []*client{ca, cb} {
		ev := c.Next(t)
		assert.Equal(t, "hello", string(ev.Data))
		assert.Equal(t, "headline", ev.Event)
		assert.Equal(t, id, ev.ID)
	}

	_, err = a.hub.Publish(t.Context(), "news", sse.Event{Data: []byte("x"), ID: "bad\nid"})
	require.Error(t, err, "the hub validates before Redis sees it")
}
