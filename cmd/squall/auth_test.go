package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/httpedge"
)

// jwksCommand is the command line docs/auth.md shows.
const jwksCommand = "squall --jwks-url https://idp.example/.well-known/jwks.json --jwt-audience squall --jwt-issuer https://idp.example/ --jwt-leeway 30s"

func TestAuthFlags(t *testing.T) {
	o, err := parse(strings.Fields(jwksCommand)[1:], func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, "https://idp.example/.well-known/jwks.json", o.edge.jwksURL)
	assert.Equal(t, []string{"squall"}, []string(o.edge.jwtAudience))
	assert.Equal(t, "https://idp.example/", o.edge.jwtIssuer)
	assert.Equal(t, 30*time.Second, o.edge.jwtLeeway)

	env := map[string]string{"SQUALL_JWT_AUDIENCE": "a, b", "SQUALL_JWT_ALGORITHMS": "RS256,ES256", "SQUALL_JWT_PUBLIC_KEY": "/k.pem"}
	o, err = parse(nil, func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, []string(o.edge.jwtAudience))
	assert.Equal(t, []string{"RS256", "ES256"}, []string(o.edge.jwtAlgorithms))
	assert.Equal(t, "/k.pem", o.edge.jwtPublicKey)

	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pubPEM := writePEM(t, dir, "ec.pem", ec.Public())
	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not PEM"), 0o600))
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"a key file", []string{"--jwt-public-key", pubPEM}, ""},
		{"aud without a key", []string{"--jwt-audience", "squall"}, "need --jwt-secret, --jwt-public-key or --jwks-url"},
		{"leeway at the bound", []string{"--jwt-public-key", pubPEM, "--jwt-leeway", "5m"}, ""},
		{"leeway over the bound", []string{"--jwt-public-key", pubPEM, "--jwt-leeway", "5m1s"}, "Leeway"},
		{"HS256 pinned without a secret", []string{"--jwt-public-key", pubPEM, "--jwt-algorithms", "HS256"}, "needs Auth.Secret"},
		{"none", []string{"--jwt-secret", strings.Repeat("s", 32), "--jwt-algorithms", "none"}, `"none"`},
		{"a missing key file", []string{"--jwt-public-key", filepath.Join(dir, "nope.pem")}, "--jwt-public-key"},
		{"a file without keys", []string{"--jwt-public-key", bad}, "no PEM public key"},
		{"a JWKS URL that is not http", []string{"--jwks-url", "ftp://idp.example/jwks"}, "want http(s)"},
		{"a bad option is reported before the JWKS is fetched", []string{"--jwks-url", "http://192.0.2.1/jwks", "--jwt-algorithms", "HS512"}, "needs Auth.Secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parse(tt.args, func(string) string { return "" })
			require.NoError(t, err)
			defer o.edge.close()
			err = o.edge.configure(&squall.Config{}, slog.New(slog.DiscardHandler))
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.err)
		})
	}
}

func writePEM(t *testing.T, dir, name string, key any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	return path
}

// TestAuthFlagsWiring runs the hub in process with a JWKS URL and a key
// file: tokens of both are accepted, with the audience and issuer checked;
// the JWKS goroutine ends with the hub (goleak in TestMain).
func TestAuthFlagsWiring(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwk, err := jwkset.NewJWKFromKey(rsaKey.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "idp-1", USE: jwkset.UseSig}})
	require.NoError(t, err)
	set, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	require.NoError(t, err)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(set) }))
	defer idp.Close()
	pubPEM := writePEM(t, t.TempDir(), "ec.pem", ec.Public())

	addr := freeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan error, 1)
	go func() {
		ran <- run(ctx, []string{"--addr", addr, "--jwks-url", idp.URL, "--jwt-public-key", pubPEM,
			"--jwt-audience", "squall", "--jwt-issuer", "https://idp.example/", "--drain", "1s", "--log-level", "warn"},
			func(string) string { return "" }, os.Stderr)
	}()
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond, "hub ready")

	claims := func(aud string) httpedge.Claims {
		c := httpedge.Claims{Publish: []string{"a"}, Subscribe: []string{"a"}}
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
		c.Audience = jwt.ClaimStrings{aud}
		c.Issuer = "https://idp.example/"
		return c
	}
	sign := func(m jwt.SigningMethod, key any, kid string, c httpedge.Claims) string {
		tok := jwt.NewWithClaims(m, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		return s
	}
	status := func(method, path, body, tok string) int {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusAccepted, status("POST", "/publish", `{"channel":"a","data":1}`,
		sign(jwt.SigningMethodRS256, rsaKey, "idp-1", claims("squall"))), "RS256, key from the JWKS")
	assert.Equal(t, http.StatusAccepted, status("POST", "/publish", `{"channel":"a","data":1}`,
		sign(jwt.SigningMethodES256, ec, "", claims("squall"))), "ES256, key from the file")
	assert.Equal(t, http.StatusUnauthorized, status("POST", "/publish", `{"channel":"a","data":1}`,
		sign(jwt.SigningMethodRS256, rsaKey, "idp-1", claims("billing"))), "another audience")

	stop()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "run did not return")
	}
}
