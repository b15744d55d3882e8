package httpedge_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// jwksServer serves a JSON Web Key Set that a test replaces at will, and
// counts the fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	body    []byte
	hold    chan struct{} // when set, fetches wait for it to close
}

func newJWKSServer(t *testing.T, keys map[string]crypto.PublicKey) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(t, keys)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, hold := s.body, s.hold
		s.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve replaces the set with keys, by kid.
func (s *jwksServer) serve(t *testing.T, keys map[string]crypto.PublicKey) {
	t.Helper()
	s.serveBody(jwksBody(t, keys))
}

func (s *jwksServer) serveBody(b []byte) {
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

func (s *jwksServer) holdFetches(hold chan struct{}) {
	s.mu.Lock()
	s.hold = hold
	s.mu.Unlock()
}

func jwksBody(t *testing.T, keys map[string]crypto.PublicKey) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for kid, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
		require.NoError(t, err)
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	return b
}

func newJWKS(t *testing.T, cfg httpedge.JWKSConfig) *httpedge.JWKS {
	t.Helper()
	j, err := httpedge.NewJWKS(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func edKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

// TestJWKSRotation: the identity provider rotates its key mid-run. Streams
// opened with tokens of the old key stay open and keep receiving; tokens
// of the new key are accepted at once (their unknown kid fetches the set);
// tokens of the removed key are refused.
func TestJWKSRotation(t *testing.T) {
	old, next := mustEC(t), edKey(t)
	idp := newJWKSServer(t, map[string]crypto.PublicKey{"k1": old.Public()})
	jwks := newJWKS(t, httpedge.JWKSConfig{URL: idp.URL})
	require.Equal(t, int64(1), idp.fetches.Load(), "fetched once at start")
	s := newHubServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{JWKS: jwks, Audience: []string{"squall"}}})

	c := claims("u1", time.Hour, []string{"orders"}, []string{"orders"})
	c.Audience = jwt.ClaimStrings{"squall"}
	oldTok := signWith(t, jwt.SigningMethodES256, old, "k1", c)
	before := s.subscribe(t, "channel=orders", bearer(oldTok))
	s.mustPublishAuth(t, oldTok, "orders", "before rotation")
	assert.Equal(t, "before rotation", string(before.Next(t).Data))

	idp.serve(t, map[string]crypto.PublicKey{"k2": next.Public()})
	newTok := signWith(t, jwt.SigningMethodEdDSA, next, "k2", c)
	s.mustPublishAuth(t, newTok, "orders", "after rotation")
	assert.Equal(t, "after rotation", string(before.Next(t).Data), "the stream of the old key stays open")
	assert.Equal(t, int64(2), idp.fetches.Load(), "the new kid fetched the set once")
	after := s.subscribe(t, "channel=orders", bearer(newTok))

	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=orders", "", bearer(oldTok))
	assert.Equal(t, http.StatusUnauthorized, r.status, "the removed key no longer signs")
	assert.Contains(t, r.err, "no signing key with the token's kid")

	s.mustPublishAuth(t, newTok, "orders", "both")
	assert.Equal(t, "both", string(before.Next(t).Data))
	assert.Equal(t, "both", string(after.Next(t).Data))
	assert.Equal(t, int64(2), idp.fetches.Load(), "the removed kid, within a minute of the last fetch, fetched nothing")
}

// TestJWKSUnknownKIDBounded: an attacker sending tokens with random kids
// makes the hub fetch the set once per Refetch, not once per token. The
// first unknown kid fetches (the bound: one); the next ones, in a burst
// and in parallel, fetch nothing and are refused at once.
func TestJWKSUnknownKIDBounded(t *testing.T) {
	key := mustEC(t)
	idp := newJWKSServer(t, map[string]crypto.PublicKey{"k1": key.Public()})
	jwks := newJWKS(t, httpedge.JWKSConfig{URL: idp.URL, Refetch: time.Hour})
	s := newHubServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{JWKS: jwks}})
	c := claims("u1", time.Hour, nil, []string{"*"})
	// An attacker can sign with a key of their own; only the kid matters
	// to the fetch.
	evil := mustEC(t)
	tok := func(i int) string { return signWith(t, jwt.SigningMethodES256, evil, fmt.Sprintf("random-%d", i), c) }

	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(tok(0)))
	assert.Equal(t, 401, r.status)
	assert.Contains(t, r.err, "no signing key with the token's kid")
	assert.Equal(t, int64(2), idp.fetches.Load(), "the first unknown kid fetches")

	const attackers, each = 8, 25
	var wg sync.WaitGroup
	codes := make(chan int, attackers*each)
	for a := range attackers {
		toks := make([]string, each)
		for i := range toks {
			toks[i] = tok(1 + a*each + i)
		}
		wg.Go(func() {
			for _, tk := range toks {
				req, err := http.NewRequest(http.MethodGet, s.srv.URL+"/events?channel=a", nil)
				if !assert.NoError(t, err) {
					return
				}
				req.Header.Set("Authorization", "Bearer "+tk)
				resp, err := http.DefaultClient.Do(req)
				if !assert.NoError(t, err) {
					return
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			}
		})
	}
	wg.Wait()
	close(codes)
	n := 0
	for code := range codes {
		n++
		assert.Equal(t, 401, code)
	}
	assert.Equal(t, attackers*each, n)
	assert.Equal(t, int64(2), idp.fetches.Load(), "200 random kids in a burst: no fetch past the bound")

	good := signWith(t, jwt.SigningMethodES256, key, "k1", c)
	assert.Equal(t, 200, do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(good)).status, "known keys still work")
}

// TestJWKSRefetchWaiters: clients that bring a new kid while its fetch
// runs wait for that fetch instead of being refused, and it is the only
// one.
func TestJWKSRefetchWaiters(t *testing.T) {
	old, next := mustEC(t), mustEC(t)
	idp := newJWKSServer(t, map[string]crypto.PublicKey{"k1": old.Public()})
	jwks := newJWKS(t, httpedge.JWKSConfig{URL: idp.URL, Refetch: time.Hour})
	hub := newHubServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{JWKS: jwks}})
	// Count requests that reached the hub, to release the fetch only once
	// all of them are in.
	var entered atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		hub.edge.ServeHTTP(w, r)
	}))
	defer front.Close()

	hold := make(chan struct{})
	idp.holdFetches(hold)
	idp.serve(t, map[string]crypto.PublicKey{"k1": old.Public(), "k2": next.Public()})
	tok := signWith(t, jwt.SigningMethodES256, next, "k2", claims("u1", time.Hour, []string{"a"}, nil))
	const clients = 6
	codes := make(chan int, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, front.URL+"/publish", strings.NewReader(`{"channel":"a","data":1}`))
			if !assert.NoError(t, err) {
				codes <- 0
				return
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if !assert.NoError(t, err) {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	require.Eventually(t, func() bool { return entered.Load() == clients && idp.fetches.Load() == 2 },
		wait, time.Millisecond, "all clients in, the fetch held")
	close(hold)
	wg.Wait()
	close(codes)
	for code := range codes {
		assert.Equal(t, http.StatusAccepted, code)
	}
	assert.Equal(t, int64(2), idp.fetches.Load(), "one fetch for all of them")
}

func TestJWKSBounds(t *testing.T) {
	keys := func(n int) map[string]crypto.PublicKey {
		m := map[string]crypto.PublicKey{}
		for i := range n {
			m[fmt.Sprintf("k%d", i)] = edKey(t).Public()
		}
		return m
	}
	t.Run("keys at the bound", func(t *testing.T) {
		idp := newJWKSServer(t, keys(4))
		newJWKS(t, httpedge.JWKSConfig{URL: idp.URL, MaxKeys: 4})
	})
	t.Run("keys over the bound", func(t *testing.T) {
		idp := newJWKSServer(t, keys(5))
		_, err := httpedge.NewJWKS(context.Background(), httpedge.JWKSConfig{URL: idp.URL, MaxKeys: 4})
		assert.ErrorContains(t, err, "5 keys, over the bound of 4")
	})
	body := jwksBody(t, keys(2))
	t.Run("bytes at the bound", func(t *testing.T) {
		idp := newJWKSServer(t, nil)
		idp.serveBody(body)
		newJWKS(t, httpedge.JWKSConfig{URL: idp.URL, MaxBytes: int64(len(body))})
	})
	t.Run("bytes over the bound", func(t *testing.T) {
		idp := newJWKSServer(t, nil)
		idp.serveBody(body)
		_, err := httpedge.NewJWKS(context.Background(), httpedge.JWKSConfig{URL: idp.URL, MaxBytes: int64(len(body)) - 1})
		assert.ErrorContains(t, err, "over the bound")
	})
	t.Run("fetch timeout", func(t *testing.T) {
		idp := newJWKSServer(t, keys(1))
		hold := make(chan struct{})
		defer close(hold)
		idp.holdFetches(hold)
		_, err := httpedge.NewJWKS(context.Background(), httpedge.JWKSConfig{URL: idp.URL, FetchTimeout: 100 * time.Millisecond})
		// Which of the two timers fires first (the context's or the
		// http.Client's) depends on scheduling; either is the bound.
		require.Error(t, err)
		assert.Regexp(t, `deadline exceeded|Client\.Timeout exceeded`, err.Error())
	})
	t.Run("no usable key", func(t *testing.T) {
		idp := newJWKSServer(t, nil)
		idp.serveBody([]byte(`{"keys":[]}`))
		_, err := httpedge.NewJWKS(context.Background(), httpedge.JWKSConfig{URL: idp.URL})
		assert.ErrorContains(t, err, "no key Squall can use")
	})
	t.Run("not http", func(t *testing.T) {
		_, err := httpedge.NewJWKS(context.Background(), httpedge.JWKSConfig{URL: "file:///etc/passwd"})
		assert.ErrorContains(t, err, "want http(s)")
	})
}

// TestJWKSBadRefreshKeepsKeys: a set that grows past the bound (or an
// answer that is not a set) fails the fetch, and the keys already known
// go on working.
func TestJWKSBadRefreshKeepsKeys(t *testing.T) {
	key := mustEC(t)
	idp := newJWKSServer(t, map[string]crypto.PublicKey{"k1": key.Public()})
	jwks := newJWKS(t, httpedge.JWKSConfig{URL: idp.URL, MaxKeys: 2, Refetch: time.Millisecond})
	s := newHubServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{JWKS: jwks}})
	c := claims("u1", time.Hour, nil, []string{"*"})
	good := signWith(t, jwt.SigningMethodES256, key, "k1", c)
	for i, body := range [][]byte{
		jwksBody(t, map[string]crypto.PublicKey{"k1": key.Public(), "a": edKey(t).Public(), "b": edKey(t).Public()}),
		[]byte("<html>maintenance</html>"),
	} {
		idp.serveBody(body)
		fetches := idp.fetches.Load()
		// An unknown kid fetches the bad answer.
		require.Eventually(t, func() bool {
			do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(signWith(t, jwt.SigningMethodES256, key, fmt.Sprintf("x%d", i), c)))
			return idp.fetches.Load() > fetches
		}, wait, 5*time.Millisecond)
		assert.Equal(t, 200, do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(good)).status, "body %d: k1 still known", i)
	}
}
