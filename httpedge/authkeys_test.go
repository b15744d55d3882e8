package httpedge_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// testKeys are one private key of each kind a hub checks tokens with.
type testKeys struct {
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	rsa1024 *rsa.PrivateKey
}

func newTestKeys(t *testing.T) testKeys {
	t.Helper()
	var k testKeys
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	k.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // the point: a key too short to accept
	require.NoError(t, err)
	return k
}

// pemOf encodes public keys as a PEM file.
func pemOf(t *testing.T, keys ...crypto.PublicKey) []byte {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		require.NoError(t, err)
		require.NoError(t, pem.Encode(&b, &pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	return []byte(b.String())
}

// signWith signs c with method and key, with kid in the header when set.
func signWith(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func TestAuthPublicKeys(t *testing.T) {
	k := newTestKeys(t)
	keys, err := httpedge.ParsePublicKeys(pemOf(t, k.rsa.Public(), k.ec.Public(), k.ed.Public()))
	require.NoError(t, err)
	require.Len(t, keys, 3)
	auth := &httpedge.Auth{PublicKeys: keys, Audience: []string{"squall", "other"}, Issuer: "https://idp.example/",
		Leeway: 30 * time.Second}
	s := newHubServer(t, actors.Config{}, httpedge.Config{Auth: auth})

	good := func() httpedge.Claims {
		c := claims("u1", time.Hour, nil, []string{"*"})
		c.Audience = jwt.ClaimStrings{"squall"}
		c.Issuer = "https://idp.example/"
		return c
	}
	with := func(f func(c *httpedge.Claims)) httpedge.Claims {
		c := good()
		f(&c)
		return c
	}
	rsaPEM := pemOf(t, k.rsa.Public())
	tests := []struct {
		name    string
		token   string
		want    int
		errPart string
	}{
		{"RS256", signWith(t, jwt.SigningMethodRS256, k.rsa, "", good()), 200, ""},
		{"ES256", signWith(t, jwt.SigningMethodES256, k.ec, "", good()), 200, ""},
		{"EdDSA", signWith(t, jwt.SigningMethodEdDSA, k.ed, "", good()), 200, ""},
		{"any listed audience", signWith(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c *httpedge.Claims) {
			c.Audience = jwt.ClaimStrings{"x", "other"}
		})), 200, ""},
		{"expired within the leeway", signWith(t, jwt.SigningMethodES256, k.ec, "", with(func(c *httpedge.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-10 * time.Second))
		})), 200, ""},
		{"not before, within the leeway", signWith(t, jwt.SigningMethodES256, k.ec, "", with(func(c *httpedge.Claims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(10 * time.Second))
		})), 200, ""},
		{"expired past the leeway", signWith(t, jwt.SigningMethodES256, k.ec, "", with(func(c *httpedge.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Minute))
		})), 401, "token is expired"},
		{"wrong audience", signWith(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c *httpedge.Claims) {
			c.Audience = jwt.ClaimStrings{"billing"}
		})), 401, "invalid audience"},
		{"no audience", signWith(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c *httpedge.Claims) {
			c.Audience = nil
		})), 401, "aud"},
		{"wrong issuer", signWith(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c *httpedge.Claims) {
			c.Issuer = "https://evil.example/"
		})), 401, "invalid issuer"},
		{"no issuer", signWith(t, jwt.SigningMethodRS256, k.rsa, "", with(func(c *httpedge.Claims) {
			c.Issuer = ""
		})), 401, "iss"},
		{"alg not pinned (RS384)", signWith(t, jwt.SigningMethodRS384, k.rsa, "", good()), 401, "signing method RS384 is invalid"},
		{"alg none", signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", good()), 401, "signing method none is invalid"},
		// The classic confusion: HS256 "signed" with the public key, which
		// every client can read.
		{"HS256 with the public key as secret", signWith(t, jwt.SigningMethodHS256, rsaPEM, "", good()), 401, "signing method HS256 is invalid"},
		{"RSA key of another owner", signWith(t, jwt.SigningMethodRS256, k.rsa1024, "", good()), 401, "signature is invalid"},
		{"EC key of another owner", signWith(t, jwt.SigningMethodES256, mustEC(t), "", good()), 401, "signature is invalid"},
		{"over the token bound", strings.Repeat("a", httpedge.MaxTokenBytes+1), 401, "over 16384 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(tt.token))
			require.Equal(t, tt.want, r.status, "reason: %s", r.err)
			assert.Contains(t, r.err, tt.errPart)
		})
	}
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// TestAuthSecretAndKeys: HS256 and public keys side by side, each for its
// own algorithms only.
func TestAuthSecretAndKeys(t *testing.T) {
	k := newTestKeys(t)
	s := newHubServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{Secret: secret,
		PublicKeys: []crypto.PublicKey{k.ec.Public()}}})
	c := claims("u1", time.Hour, nil, []string{"*"})
	assert.Equal(t, 200, do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(sign(t, secret, c))).status, "HS256")
	assert.Equal(t, 200, do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(signWith(t, jwt.SigningMethodES256, k.ec, "", c))).status, "ES256")
	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(signWith(t, jwt.SigningMethodRS256, k.rsa, "", c)))
	assert.Equal(t, 401, r.status, "RS256 with no RSA key")
	assert.Contains(t, r.err, "no signing key fits the token's algorithm")
}

func TestAuthTokenBound(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{Secret: secret}})
	c := claims("u1", time.Hour, nil, []string{"*"})
	// Pad a valid token to the bound exactly, with a claim the hub
	// ignores and a kid (base64 skips some lengths; two pads reach all).
	padded := func(n, kid int) string {
		return signWith(t, jwt.SigningMethodHS256, secret, strings.Repeat("k", kid), paddedClaims{Claims: c, Pad: strings.Repeat("x", n)})
	}
	n := (httpedge.MaxTokenBytes - len(padded(0, 1))) * 3 / 4
	var atBound string
	for d := -16; d <= 16 && atBound == ""; d++ {
		for kid := 1; kid <= 4; kid++ {
			if tok := padded(n+d, kid); len(tok) == httpedge.MaxTokenBytes {
				atBound = tok
				break
			}
		}
	}
	require.Len(t, atBound, httpedge.MaxTokenBytes)
	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(atBound))
	assert.Equal(t, 200, r.status, "at the bound: %s", r.err)
	r = do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(atBound+"A"))
	assert.Equal(t, 401, r.status, "over the bound")
	assert.Contains(t, r.err, "over 16384 bytes")
}

type paddedClaims struct {
	httpedge.Claims
	Pad string `json:"pad"`
}

func TestAuthValidate(t *testing.T) {
	k := newTestKeys(t)
	pub := []crypto.PublicKey{k.ec.Public()}
	hook := func(*http.Request) (httpedge.Claims, error) { return httpedge.Claims{}, nil }
	tests := []struct {
		name string
		auth httpedge.Auth
		err  string
	}{
		{"secret", httpedge.Auth{Secret: secret}, ""},
		{"hook alone", httpedge.Auth{Authenticate: hook}, ""},
		{"nothing", httpedge.Auth{}, httpedge.ErrNoSecret.Error()},
		{"hook and secret", httpedge.Auth{Authenticate: hook, Secret: secret}, "not both"},
		{"leeway at the bound", httpedge.Auth{Secret: secret, Leeway: httpedge.MaxLeeway}, ""},
		{"leeway over the bound", httpedge.Auth{Secret: secret, Leeway: httpedge.MaxLeeway + time.Nanosecond}, "Leeway"},
		{"negative leeway", httpedge.Auth{Secret: secret, Leeway: -time.Second}, "Leeway"},
		{"HS256 without a secret", httpedge.Auth{PublicKeys: pub, Algorithms: []string{"HS256"}}, "needs Auth.Secret"},
		{"ES256 without keys", httpedge.Auth{Secret: secret, Algorithms: []string{"ES256"}}, "needs Auth.PublicKeys"},
		{"none is no algorithm", httpedge.Auth{Secret: secret, Algorithms: []string{"none"}}, `"none"`},
		{"pinned ES384", httpedge.Auth{PublicKeys: pub, Algorithms: []string{"ES384"}}, ""},
		{"short RSA key", httpedge.Auth{PublicKeys: []crypto.PublicKey{k.rsa1024.Public()}}, "1024 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.auth.Validate()
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.err)
		})
	}
}

func TestParsePublicKeys(t *testing.T) {
	k := newTestKeys(t)
	rsaDER := x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: rsaDER})
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec)
	require.NoError(t, err)
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	many := make([]crypto.PublicKey, httpedge.MaxPublicKeys+1)
	for i := range many {
		many[i] = k.ed.Public()
	}
	tests := []struct {
		name string
		pem  []byte
		n    int
		err  string
	}{
		{"three kinds", pemOf(t, k.rsa.Public(), k.ec.Public(), k.ed.Public()), 3, ""},
		{"PKCS#1 RSA", pkcs1, 1, ""},
		{"at the key bound", pemOf(t, many[:httpedge.MaxPublicKeys]...), httpedge.MaxPublicKeys, ""},
		{"over the key bound", pemOf(t, many...), 0, "more than 16"},
		{"a private key", priv, 0, "never a private key"},
		{"short RSA", pemOf(t, k.rsa1024.Public()), 0, "want 2048"},
		{"no PEM", []byte("hello"), 0, "no PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := httpedge.ParsePublicKeys(tt.pem)
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Len(t, keys, tt.n)
		})
	}
}

// TestAuthHook: an embedder's own sessions decide, and the channel grants,
// expiry and cross-origin rules apply to the claims it returns.
func TestAuthHook(t *testing.T) {
	sessions := map[string]httpedge.Claims{
		"s-alice": claims("alice", time.Hour, []string{"room:1"}, []string{"room:*"}),
		"s-brief": claims("bob", 3*time.Second, nil, []string{"room:1"}),
		"s-gone":  claims("carol", -time.Second, nil, []string{"room:1"}),
	}
	hook := func(r *http.Request) (httpedge.Claims, error) {
		c, err := r.Cookie("session")
		if err != nil {
			return httpedge.Claims{}, errNoSession
		}
		cl, ok := sessions[c.Value]
		if !ok {
			return httpedge.Claims{}, errNoSession
		}
		return cl, nil
	}
	obs := newCloseCounter()
	s := newHubServer(t, actors.Config{Observer: obs}, httpedge.Config{CORSOrigins: []string{"*"},
		Auth: &httpedge.Auth{Authenticate: hook, ExpiryRetry: 700 * time.Millisecond}})
	alice, bob := cookie("session", "s-alice"), cookie("session", "s-brief")

	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=room:1", "", nil)
	assert.Equal(t, 401, r.status)
	assert.Equal(t, "no session: log in first", r.err, "the hook's error is the reason")
	assert.Equal(t, 401, do(t, http.MethodGet, s.srv.URL+"/events?channel=room:1", "", cookie("session", "s-mallory")).status)
	assert.Equal(t, 403, do(t, http.MethodGet, s.srv.URL+"/events?channel=lobby", "", alice).status, "the claims' grants apply")
	r = do(t, http.MethodGet, s.srv.URL+"/events?channel=room:1", "", cookie("session", "s-gone"))
	assert.Equal(t, 401, r.status, "a session past its expiry")
	assert.Contains(t, r.err, "expired")

	c := s.subscribe(t, "channel=room:1", bob)
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range alice {
		h[k] = v
	}
	r = do(t, http.MethodPost, s.srv.URL+"/publish", `{"channel":"room:1","data":"hi"}`, h)
	require.Equal(t, http.StatusAccepted, r.status, "publish: %s", r.err)
	assert.Equal(t, "hi", string(c.Next(t).Data))
	c.RequireEnded(t)
	require.Eventually(t, func() bool { return obs.count(actors.Expired) == 1 }, wait, time.Millisecond, "closed at the session's expiry")

	// With "*" allowed, a page on any origin may publish, but not on the
	// strength of ambient credentials such as the session cookie.
	h.Set("Origin", "https://evil.example")
	h.Set("Sec-Fetch-Site", "cross-site")
	r = do(t, http.MethodPost, s.srv.URL+"/publish", `{"channel":"room:1","data":"x"}`, h)
	assert.Equal(t, http.StatusForbidden, r.status)
	assert.Contains(t, r.err, "cross-origin")
}

var errNoSession = errorString("no session: log in first")

type errorString string

func (e errorString) Error() string { return string(e) }

func TestAuthHookValidation(t *testing.T) {
	h := actors.New(actors.Config{})
	defer func() { require.NoError(t, h.Shutdown(context.Background())) }()
	assert.PanicsWithError(t, "httpedge: Auth.Authenticate replaces the token check: set it or Secret, PublicKeys and JWKS, not both", func() {
		httpedge.New(httpedge.Config{Hub: h, Auth: &httpedge.Auth{Secret: secret,
			Authenticate: func(*http.Request) (httpedge.Claims, error) { return httpedge.Claims{}, nil }}})
	})
}
