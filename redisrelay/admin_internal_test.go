package redisrelay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
)

// tableHub stands in for a hub's channel table: n channels with 3 streams
// each, paged as actors.Hub pages them. Redis is real.
type tableHub struct{ names []string }

func newTableHub(n int) *tableHub {
	h := &tableHub{}
	for i := range n {
		h.names = append(h.names, fmt.Sprintf("room:%06d", i))
	}
	return h
}

func (h *tableHub) Presence(_ context.Context, q actors.PresenceQuery) (actors.PresencePage, error) {
	i, _ := slices.BinarySearch(h.names, q.After)
	if i < len(h.names) && h.names[i] == q.After {
		i++
	}
	var p actors.PresencePage
	for ; i < len(h.names) && len(p.Channels) < q.Limit; i++ {
		p.Channels = append(p.Channels, actors.ChannelPresence{Channel: h.names[i], Subscribers: 3})
	}
	if i < len(h.names) && len(p.Channels) > 0 {
		p.Next = p.Channels[len(p.Channels)-1].Channel
	}
	return p, nil
}

func (h *tableHub) Disconnect(context.Context, actors.DisconnectMatch, actors.DisconnectNotice) (int, error) {
	return 0, nil
}

func benchAdmin(b *testing.B, n int) *Admin {
	var id [6]byte
	_, _ = rand.Read(id[:])
	r, err := New(Config{URL: "redis://127.0.0.1:6379/0", Prefix: "squallbench-" + hex.EncodeToString(id[:])})
	require.NoError(b, err)
	b.Cleanup(func() { _ = r.Close() })
	a, err := NewAdmin(r, newTableHub(n), AdminConfig{Interval: 2 * time.Second})
	require.NoError(b, err)
	return a
}

// BenchmarkPresenceReport is one node's report for one interval: the
// channel table paged, the script pipeline, and the Redis memory the
// interval's keys take (redis-bytes/interval).
func BenchmarkPresenceReport(b *testing.B) {
	for _, n := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			a := benchAdmin(b, n)
			e := int64(1)
			for b.Loop() {
				e++
				require.NoError(b, a.write(e))
			}
			var bytes int64
			for _, k := range []string{a.counts, a.names, a.nodes, a.written} {
				m, _ := a.r.client.MemoryUsage(context.Background(), a.key(k, e)).Result()
				bytes += m
			}
			b.ReportMetric(float64(bytes), "redis-bytes/interval")
		})
	}
}

// BenchmarkClusterPresencePage reads a page of 1000 out of 10,000 channels.
func BenchmarkClusterPresencePage(b *testing.B) {
	a := benchAdmin(b, 10000)
	e := a.intervalOf(time.Now()) - 1
	require.NoError(b, a.write(e))
	for b.Loop() {
		// Pages through the middle of the names, so the lex range works.
		p, err := a.Presence(context.Background(), actors.PresenceQuery{After: "room:004000", Limit: 1000})
		require.NoError(b, err)
		require.Len(b, p.Channels, 1000)
		require.Equal(b, 3, p.Channels[0].Subscribers)
	}
}
