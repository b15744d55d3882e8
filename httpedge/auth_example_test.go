package httpedge_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// Tokens of an identity provider, checked with the key set it publishes,
// its audience and its issuer.
func ExampleNewJWKS() {
	// The identity provider: a key pair and its public JWKS.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	jwk, _ := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "2026-12"}})
	set, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(set) }))
	defer idp.Close()

	jwks, err := httpedge.NewJWKS(context.Background(), httpedge.JWKSConfig{URL: idp.URL})
	if err != nil {
		panic(err)
	}
	defer jwks.Close()
	hub := actors.New(actors.Config{})
	defer hub.Shutdown(context.Background())
	srv := httptest.NewServer(httpedge.New(httpedge.Config{Hub: hub, Auth: &httpedge.Auth{
		JWKS: jwks, Audience: []string{"squall"}, Issuer: "https://idp.example/", Leeway: 30 * time.Second}}))
	defer srv.Close()

	publish := func(aud string) int {
		c := httpedge.Claims{Publish: []string{"orders"}}
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Minute))
		c.Audience = jwt.ClaimStrings{aud}
		c.Issuer = "https://idp.example/"
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = "2026-12"
		signed, _ := tok.SignedString(priv)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/publish", strings.NewReader(`{"channel":"orders","data":1}`))
		req.Header.Set("Authorization", "Bearer "+signed)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println(publish("squall"), publish("billing"))
	// Output: 202 401
}

// An application's own sessions instead of tokens.
func ExampleAuth_authenticate() {
	sessions := map[string]string{"c2VjcmV0": "alice"} // session id → user
	auth := &httpedge.Auth{Authenticate: func(r *http.Request) (httpedge.Claims, error) {
		cookie, err := r.Cookie("session")
		if err != nil || sessions[cookie.Value] == "" {
			return httpedge.Claims{}, errors.New("log in first")
		}
		user := sessions[cookie.Value]
		c := httpedge.Claims{Subscribe: []string{"user:" + user}}
		c.Subject = user
		return c, nil
	}}
	hub := actors.New(actors.Config{})
	defer hub.Shutdown(context.Background())
	srv := httptest.NewServer(httpedge.New(httpedge.Config{Hub: hub, Auth: auth}))
	defer srv.Close()

	for _, path := range []string{"/events?channel=user:alice", "/events?channel=user:bob"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: "c2VjcmV0"})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(path, resp.StatusCode)
	}
	resp, _ := http.Get(srv.URL + "/events?channel=user:alice")
	resp.Body.Close()
	fmt.Println("no session", resp.StatusCode)
	// Output:
	// /events?channel=user:alice 200
	// /events?channel=user:bob 403
	// no session 401
}
