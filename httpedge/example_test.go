package httpedge_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

// The hub's HTTP API in a few lines: subscribe with GET /events, publish from
// Go (or with POST /publish).
func ExampleNew() {
	hub := actors.New(actors.Config{})
	defer hub.Shutdown(context.Background())
	srv := httptest.NewServer(httpedge.New(httpedge.Config{Hub: hub}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/events?channel=user-42")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	// The headers arrived: the stream is subscribed.

	ev, _ := sse.New(map[string]string{"text": "New order"}, sse.WithEvent("notice"), sse.WithID("1"))
	_, _ = hub.Publish(context.Background(), "user-42", ev)

	got, _ := sse.NewParser(resp.Body).Next()
	fmt.Println(got.Event, got.ID, string(got.Data))
	// Output: notice 1 {"text":"New order"}
}

// One stream per request, fed by a producer that stops when the client
// leaves: the Python SDK's EventStream + sse_response.
func ExampleStreamHandler() {
	hub := actors.New(actors.Config{})
	defer hub.Shutdown(context.Background())
	h := httpedge.StreamHandler(hub, func(ctx context.Context, s *actors.Stream) error {
		for n := 1; n <= 3; n++ {
			ev, _ := sse.New(map[string]int{"n": n}, sse.WithEvent("counter"), sse.WithID(fmt.Sprint(n)))
			if err := s.Publish(ctx, ev); err != nil {
				return err // the client left
			}
		}
		return nil // the stream closes once all three are written
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	p := sse.NewParser(resp.Body)
	var lines []string
	for ev, err := p.Next(); err == nil; ev, err = p.Next() {
		lines = append(lines, ev.Event+" "+string(ev.Data))
	}
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// counter {"n":1}
	// counter {"n":2}
	// counter {"n":3}
}
