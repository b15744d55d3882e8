package redisrelay_test

import (
	"context"
	"fmt"
	"time"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/redisrelay"
	"github.com/squall-sse/squall/sse"
)

// printSink stands in for a hub: it prints what the relay delivers.
type printSink chan string

func (s printSink) Deliver(channel string, ev sse.Event, pos actors.Pos) {
	s <- fmt.Sprintf("%s: %s (event %q, in history: %v)", channel, ev.Data, ev.Event, !pos.IsZero())
}

// A relay publishes through Redis and delivers what any node publishes. In
// a hub, the sink is the *actors.Hub created with Config.Cluster set to the
// relay, and the relay is the hub's cluster and the /readyz check.
func Example() {
	relay, err := redisrelay.New(redisrelay.Config{URL: "redis://127.0.0.1:6379/0", Prefix: "squall-example"})
	if err != nil {
		panic(err)
	}
	defer relay.Close()
	sink := make(printSink, 1)
	relay.Start(nil, sink)
	// A hub tells the relay which channels its streams are on; any other
	// sink says which channels it wants itself.
	relay.Join("orders")
	for relay.Ready() != nil || !relay.Listening("orders") {
		time.Sleep(5 * time.Millisecond) // wait for the subscription
	}

	if _, err := relay.Publish(context.Background(), "orders", sse.Event{Data: []byte(`{"n":1}`), Event: "order_update"}); err != nil {
		panic(err)
	}
	fmt.Println(<-sink)
	// Output: orders: {"n":1} (event "order_update", in history: true)
}
