package redisrelay_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// newRelay is a relay that publishes and replays but does not subscribe.
func newRelay(t *testing.T, rc redisrelay.Config) *redisrelay.Relay {
	t.Helper()
	if rc.URL == "" {
		rc.URL = sharedRedis
	}
	if rc.Prefix == "" {
		rc.Prefix = newPrefix(t, rc.URL)
	}
	r, err := redisrelay.New(rc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// pageAll reads every page after lastID and returns the pages' data.
func pageAll(t *testing.T, r *redisrelay.Relay, req actors.ReplayRequest) [][]string {
	t.Helper()
	var pages [][]string
	for {
		p, err := r.Replay(context.Background(), req)
		require.NoError(t, err, "Replay %+v", req)
		require.Equal(t, actors.ReplayFound, p.Status, "Replay %+v", req)
		var page []string
		for _, e := range p.Events {
			page = append(page, string(e.Event.Data))
		}
		pages = append(pages, page)
		if !p.More {
			return pages
		}
		require.NotEmpty(t, p.Events, "a page with More has events")
		req.From = p.Events[len(p.Events)-1].Pos
	}
}

func TestReplayPages(t *testing.T) {
	r := newRelay(t, redisrelay.Config{History: 300})
	ctx := context.Background()
	var ids []string
	for i := range 250 {
		id, err := r.Publish(ctx, "a", sse.Event{Data: []byte(strconv.Itoa(i))})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	lens := func(pages [][]string) []int {
		var out []int
		for _, p := range pages {
			out = append(out, len(p))
		}
		return out
	}
	flat := func(pages [][]string) []string {
		var out []string
		for _, p := range pages {
			out = append(out, p...)
		}
		return out
	}
	want := make([]string, 0, 249)
	for i := 1; i < 250; i++ {
		want = append(want, strconv.Itoa(i))
	}

	pages := pageAll(t, r, actors.ReplayRequest{Channel: "a", LastEventID: ids[0]})
	assert.Equal(t, []int{100, 100, 49}, lens(pages), "MaxEvents defaults to 100")
	assert.Equal(t, want, flat(pages), "every event once, in order")

	pages = pageAll(t, r, actors.ReplayRequest{Channel: "a", LastEventID: ids[0], MaxEvents: 7})
	assert.Len(t, pages, 36)
	assert.Equal(t, want, flat(pages))

	// Bodies are {"data":"N","event":null,"retry":null}: 36-38 bytes.
	pages = pageAll(t, r, actors.ReplayRequest{Channel: "a", LastEventID: ids[239], MaxBytes: 100})
	assert.Equal(t, []int{2, 2, 2, 2, 2}, lens(pages), "MaxBytes bounds the page")
	pages = pageAll(t, r, actors.ReplayRequest{Channel: "a", LastEventID: ids[245], MaxBytes: 1})
	assert.Equal(t, []int{1, 1, 1, 1}, lens(pages), "at least one event whatever its size")

	last, err := r.Replay(ctx, actors.ReplayRequest{Channel: "a", LastEventID: ids[249]})
	require.NoError(t, err)
	assert.Equal(t, actors.ReplayFound, last.Status)
	assert.Empty(t, last.Events)
	assert.False(t, last.More)
	assert.Equal(t, ids[249], last.Point.String(), "an empty replay still says where the point is")

	first, err := r.Replay(ctx, actors.ReplayRequest{Channel: "a", LastEventID: ids[10], MaxEvents: 5})
	require.NoError(t, err)
	assert.Equal(t, ids[10], first.Point.String())
	// From wins over LastEventID.
	next, err := r.Replay(ctx, actors.ReplayRequest{Channel: "a", LastEventID: ids[10], From: first.Events[4].Pos, MaxEvents: 5})
	require.NoError(t, err)
	assert.Equal(t, []string{"16", "17", "18", "19", "20"}, dataOfReplay(next))
	assert.Equal(t, first.Events[4].Pos, next.Point)

	// A later page whose point was trimmed meanwhile is expired.
	for i := range 300 {
		_, err := r.Publish(ctx, "a", sse.Event{Data: []byte("n" + strconv.Itoa(i))})
		require.NoError(t, err)
	}
	gone, err := r.Replay(ctx, actors.ReplayRequest{Channel: "a", From: first.Events[4].Pos})
	require.NoError(t, err)
	assert.Equal(t, actors.ReplayExpired, gone.Status)
}

func dataOfReplay(r actors.Replay) []string {
	out := make([]string, len(r.Events))
	for i, e := range r.Events {
		out[i] = string(e.Event.Data)
	}
	return out
}

// The publisher-id index and the entry log follow the stream as it is
// trimmed by count and by age: they never hold more than the stream.
func TestHistoryIndexBounded(t *testing.T) {
	r := newRelay(t, redisrelay.Config{History: 10})
	rdb := rawClient(t, sharedRedis)
	ctx := context.Background()
	stream := r.StreamKey("a")
	idx := r.Prefix() + ":history-ids:a"
	log := r.Prefix() + ":history-log:a"
	for i := range 100 {
		ev := sse.Event{Data: []byte(strconv.Itoa(i)), ID: fmt.Sprintf("p-%d", i%15)}
		if i%3 == 0 {
			ev.ID = "" // entries without a publisher id are in the log only
		}
		_, err := r.Publish(ctx, "a", ev)
		require.NoError(t, err)
		xlen, llen := rdb.XLen(ctx, stream).Val(), rdb.LLen(ctx, log).Val()
		require.Equal(t, xlen, llen, "the log mirrors the stream after publish %d", i)
		require.LessOrEqual(t, xlen, int64(11))
		require.LessOrEqual(t, rdb.HLen(ctx, idx).Val(), xlen, "the index holds retained entries only")
	}
	// Every indexed id points at the most recent retained entry carrying it.
	entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
	require.NoError(t, err)
	newest := map[string]string{}
	for _, e := range entries {
		if id, _ := e.Values["i"].(string); id != "" {
			newest[id] = e.ID
		}
	}
	assert.Equal(t, newest, rdb.HGetAll(ctx, idx).Val())
	for _, e := range rdb.LRange(ctx, log, 0, -1).Val() {
		assert.False(t, strings.Contains(e, "{"), "the log holds ids, not event data: %q", e)
	}
}
