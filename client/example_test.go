package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/squall-sse/squall/client"
)

// A server sends two events and ends the response; the client reconnects
// with Last-Event-ID, and the server answers 204 to say "stop".
func ExampleConnect() {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 1 {
			fmt.Println("server: Last-Event-ID", r.Header.Get("Last-Event-ID"))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "id: 1\nevent: greeting\ndata: hello\n\nid: 2\ndata: world\n\n")
	}))
	defer srv.Close()

	ctx := context.Background()
	s, err := client.Connect(ctx, srv.URL, client.Config{InitialRetry: 10 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	for ev, err := range s.Events(ctx) {
		if err != nil {
			fmt.Println("stopped:", err)
			break
		}
		fmt.Printf("%s %s: %s\n", ev.ID, ev.Event, ev.Data)
	}
	fmt.Printf("%+v\n", s.Stats())
	// Output:
	// 1 greeting: hello
	// 2 message: world
	// server: Last-Event-ID 2
	// stopped: client: server answered 204 No Content, not reconnecting
	// {Attempts:2 Connects:1 Reconnects:0 Events:2 LastEventID:2 Retry:10ms Connected:false}
}

// A refused subscription ends Connect with the status and the server's
// reason.
func ExampleStatusError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error": "token expired"}`)
	}))
	defer srv.Close()

	_, err := client.Connect(context.Background(), srv.URL+"/events?channel=orders", client.Config{})
	var se *client.StatusError
	if errors.As(err, &se) {
		fmt.Println(se.StatusCode, se.Reason)
	}
	fmt.Println(err)
	// Output:
	// 401 token expired
	// client: server answered 401 Unauthorized: token expired
}

// Config.Token is called before every request. After a 401 it is called
// again with the token that was refused, and the request is retried at
// once: a source that caches tokens refreshes then.
func ExampleConfig_token() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer fresh" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: hello\n\n")
	}))
	defer srv.Close()

	cached := "stale"
	token := func(ctx context.Context, refused string) (string, error) {
		if refused == cached {
			cached = "fresh" // ask the identity provider for a new token here
		}
		fmt.Printf("token(refused=%q) = %q\n", refused, cached)
		return cached, nil
	}
	ctx := context.Background()
	s, err := client.Connect(ctx, srv.URL, client.Config{Token: token})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ev, err := s.Next(ctx)
	fmt.Println(string(ev.Data), err)
	// Output:
	// token(refused="") = "stale"
	// token(refused="stale") = "fresh"
	// hello <nil>
}
