package redisrelay_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/redisrelay"
)

// BenchmarkPublishToReceive measures one event's trip across two hubs: a
// publish on hub A (over HTTP, or a Go call to A's relay) until a
// subscriber of hub B has parsed it off its socket. Events go one at a
// time, so ns/op is the latency too; p50 and p99 are reported in µs.
func BenchmarkPublishToReceive(b *testing.B) {
	for _, via := range []string{"http", "go"} {
		b.Run("via="+via, func(b *testing.B) {
			rc := redisrelay.Config{URL: sharedRedis, Prefix: newPrefix(b, sharedRedis)}
			a := newNode(b, rc, actors.Config{})
			nb := newNode(b, rc, actors.Config{})
			a.requireReady(b)
			nb.requireReady(b)
			c := nb.subscribe(b, "channel=bench", "")
			nb.requireChannels(b, 1)
			var lat []time.Duration
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				data := strconv.Itoa(i)
				start := time.Now()
				if via == "http" {
					a.mustPublish(b, "bench", data)
				} else {
					_, err := a.relay.Publish(context.Background(), "bench", evData(data))
					require.NoError(b, err)
				}
				ev := c.Next(b)
				lat = append(lat, time.Since(start))
				if string(ev.Data) != data {
					b.Fatalf("got %q, want %q", ev.Data, data)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkPublish is one Relay.Publish: the Lua script's round trip
// (XADD, trims, PEXPIRE, PUBLISH) to a local Redis, with nobody subscribed.
func BenchmarkPublish(b *testing.B) {
	relay, err := redisrelay.New(redisrelay.Config{URL: sharedRedis, Prefix: newPrefix(b, sharedRedis)})
	require.NoError(b, err)
	defer relay.Close()
	ev := evData(`{"order":"abc","status":"paid"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := relay.Publish(context.Background(), "bench", ev); err != nil {
			b.Fatal(err)
		}
	}
}
