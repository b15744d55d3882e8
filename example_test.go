package squall_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/sse"
)

// A broker in cluster mode (Redis at 127.0.0.1:6379) with auth, mounted
// under /sse/ in an application's own mux, beside its other routes.
func ExampleNew() {
	secret := []byte("example-secret-of-at-least-32-bytes!")
	broker, err := squall.New(squall.Config{RedisURL: "redis://127.0.0.1:6379/0",
		RedisPrefix: "squall-example", Auth: &httpedge.Auth{Secret: secret}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "hi") })
	mux.Handle("/sse/", broker)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer broker.Shutdown(context.Background()) // runs first: it ends the streams srv.Close waits for

	token, _ := httpedge.SignToken(secret, httpedge.Claims{Subscribe: []string{"orders"},
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
	refused, _ := http.Get(srv.URL + "/sse/events?channel=orders") // no token
	refused.Body.Close()
	stream, err := http.Get(srv.URL + "/sse/events?channel=orders&access_token=" + token)
	if err != nil {
		panic(err)
	}
	defer stream.Body.Close()
	_ = broker.WaitReady(context.Background()) // the relay has subscribed to Redis
	_, _ = broker.Publish(context.Background(), "orders", map[string]int{"id": 7}, sse.WithEvent("paid"))
	ev, _ := sse.NewParser(stream.Body).Next()
	fmt.Println(refused.StatusCode, stream.StatusCode, ev.Event, string(ev.Data))
	// Output: 401 200 paid {"id":7}
}
