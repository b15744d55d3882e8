package httpedge_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
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

var secret = []byte("0123456789abcdef0123456789abcdef")

// reply is a finished answer of the hub.
type reply struct {
	status int
	header http.Header
	err    string // the JSON reason of an error answer
}

// do sends one request. A 200 stream is closed as soon as its headers are
// in: only the answer matters here.
func do(t *testing.T, method, url, body string, header http.Header) reply {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.StatusCode >= 400 {
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var e map[string]string
		require.NoError(t, json.Unmarshal(raw, &e), "a JSON error: %s", raw)
		r.err = e["error"]
		require.NotEmpty(t, r.err, "a reason: %s", raw)
	}
	return r
}

func sign(t *testing.T, key []byte, c httpedge.Claims) string {
	t.Helper()
	tok, err := httpedge.SignToken(key, c)
	require.NoError(t, err)
	return tok
}

func claims(sub string, ttl time.Duration, publish, subscribe []string) httpedge.Claims {
	c := httpedge.Claims{Publish: publish, Subscribe: subscribe}
	c.Subject = sub
	if ttl != 0 {
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(ttl))
	}
	return c
}

func TestClaimsPatterns(t *testing.T) {
	c := claims("u1", time.Hour, []string{"orders"}, []string{"user:u1", "room:*", "exact*x"})
	tests := []struct {
		channel            string
		publish, subscribe bool
	}{
		{"orders", true, false},
		{"orders2", false, false},
		{"order", false, false},
		{"user:u1", false, true},
		{"user:u2", false, false},
		{"room:", false, true},
		{"room:42", false, true},
		{"room:42/sub", false, true},
		{"roomx", false, false},
		{"exact*x", false, true}, // "*" is a wildcard only at the end
		{"exactyx", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.channel, func(t *testing.T) {
			assert.Equal(t, tt.publish, c.CanPublish(tt.channel), "publish")
			assert.Equal(t, tt.subscribe, c.CanSubscribe(tt.channel), "subscribe")
		})
	}
	all := claims("admin", time.Hour, []string{"*"}, nil)
	assert.True(t, all.CanPublish("anything:at/all"))
	assert.False(t, all.CanSubscribe("anything"), "a missing list allows nothing")
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
func cookie(name, tok string) http.Header {
	return http.Header{"Cookie": {(&http.Cookie{Name: name, Value: tok}).String()}}
}

func TestAuthSubscribe(t *testing.T) {
	m := httpedge.NewMetrics()
	s := newHubServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{Secret: secret}, Metrics: m})
	good := sign(t, secret, claims("u1", time.Hour, nil, []string{"user:u1", "room:*"}))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	signed := func(method jwt.SigningMethod, key any, c httpedge.Claims) string {
		tok, err := jwt.NewWithClaims(method, c).SignedString(key)
		require.NoError(t, err)
		return tok
	}
	valid := claims("u1", time.Hour, nil, []string{"*"})
	notYet := claims("u1", time.Hour, nil, []string{"*"})
	notYet.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))

	tests := []struct {
		name    string
		query   string // after channel=...
		header  http.Header
		want    int
		errPart string
	}{
		{"header allowed", "channel=user:u1", bearer(good), 200, ""},
		{"cookie allowed", "channel=room:42", cookie("squall_token", good), 200, ""},
		{"query allowed", "channel=room:1&access_token=" + good, nil, 200, ""},
		{"every channel allowed", "channel=user:u1&channel=room:7", bearer(good), 200, ""},
		{"no token", "channel=user:u1", nil, 401, "missing token"},
		{"exact name of someone else", "channel=user:u2", bearer(good), 403, `"user:u2"`},
		{"prefix does not stretch", "channel=roomx", bearer(good), 403, "subscribe"},
		{"one channel of two forbidden", "channel=room:1&channel=orders", bearer(good), 403, `"orders"`},
		{"expired", "channel=user:u1", bearer(sign(t, secret, claims("u1", -time.Minute, nil, []string{"*"}))), 401, "expired"},
		{"no exp", "channel=user:u1", bearer(sign(t, secret, claims("u1", 0, nil, []string{"*"}))), 401, "exp"},
		{"not valid yet", "channel=user:u1", bearer(sign(t, secret, notYet)), 401, "not valid yet"},
		{"bad signature", "channel=user:u1", bearer(sign(t, []byte("another secret, just as long!!!!"), valid)), 401, "signature"},
		{"HS384 with the right secret", "channel=user:u1", bearer(signed(jwt.SigningMethodHS384, secret, valid)), 401, "signing method"},
		{"RS256", "channel=user:u1", bearer(signed(jwt.SigningMethodRS256, rsaKey, valid)), 401, "signing method"},
		{"alg none", "channel=user:u1", bearer(signed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)), 401, "signing method"},
		{"garbage", "channel=user:u1", bearer("not.a.jwt"), 401, "invalid token"},
		{"not bearer", "channel=user:u1", http.Header{"Authorization": {"Basic dTE6cGFzcw=="}}, 401, "Bearer"},
		{"bad header is not rescued by a good cookie", "channel=user:u1",
			http.Header{"Authorization": {"Bearer nope"}, "Cookie": {"squall_token=" + good}}, 401, "invalid token"},
		{"query before cookie", "channel=user:u1&access_token=nope", cookie("squall_token", good), 401, "invalid token"},
		{"other cookie name ignored", "channel=user:u1", cookie("session", good), 401, "squall_token"},
	}
	refused := map[int]float64{}
	for _, tt := range tests {
		refused[tt.want]++
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, http.MethodGet, s.srv.URL+"/events?"+tt.query, "", tt.header)
			require.Equal(t, tt.want, r.status, "reason: %s", r.err)
			assert.Contains(t, r.err, tt.errPart)
			if tt.want == 401 {
				assert.Contains(t, r.header.Get("WWW-Authenticate"), `Bearer realm="squall"`)
			}
		})
	}
	scraped := scrape(t, s.srv.URL)
	assert.Equal(t, refused[401], scraped[`squall_auth_failures_total{code="401"}`])
	assert.Equal(t, refused[403], scraped[`squall_auth_failures_total{code="403"}`])
}

func TestAuthPublish(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{Secret: secret, Cookie: "tok"}})
	pub := sign(t, secret, claims("backend", time.Hour, []string{"orders", "room:*"}, nil))
	subOnly := sign(t, secret, claims("u1", time.Hour, nil, []string{"*"}))
	tests := []struct {
		name    string
		channel string
		header  http.Header
		url     string
		want    int
	}{
		{"header allowed", "orders", bearer(pub), "/publish", 202},
		{"prefix allowed", "room:9", bearer(pub), "/publish", 202},
		{"cookie allowed", "orders", cookie("tok", pub), "/publish", 202},
		{"query allowed", "orders", nil, "/publish?access_token=" + pub, 202},
		{"channel not listed", "billing", bearer(pub), "/publish", 403},
		{"a subscribe grant does not publish", "orders", bearer(subOnly), "/publish", 403},
		{"no token", "orders", nil, "/publish", 401},
		{"expired", "orders", bearer(sign(t, secret, claims("b", -time.Second, []string{"*"}, nil))), "/publish", 401},
		{"default cookie name not read", "orders", cookie("squall_token", pub), "/publish", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/json"}}
			for k, v := range tt.header {
				h[k] = v
			}
			r := do(t, http.MethodPost, s.srv.URL+tt.url, `{"channel":"`+tt.channel+`","data":1}`, h)
			assert.Equal(t, tt.want, r.status, "reason: %s", r.err)
		})
	}
}

// TestTokenExpiryClosesStream: a stream lives as long as its token; at
// expiry it is sent the retry hint and closed, and the browser's reconnect
// is checked afresh.
func TestTokenExpiryClosesStream(t *testing.T) {
	obs := newCloseCounter()
	s := newHubServer(t, actors.Config{Observer: obs},
		httpedge.Config{Auth: &httpedge.Auth{Secret: secret, ExpiryRetry: 1500 * time.Millisecond}})
	// exp has whole-second precision: this token lives 1 to 2 seconds.
	tok := sign(t, secret, claims("u1", 2*time.Second, []string{"a"}, []string{"a"}))
	c := s.subscribe(t, "channel=a", bearer(tok))
	s.mustPublishAuth(t, tok, "a", "before expiry")
	assert.Equal(t, "before expiry", string(c.Next(t).Data))
	c.RequireEnded(t)
	select {
	case r := <-c.Retries:
		assert.Equal(t, 1500*time.Millisecond, r, "the retry hint came before the close")
	default:
		require.FailNow(t, "no retry hint")
	}
	require.Eventually(t, func() bool { return obs.count(actors.Expired) == 1 }, wait, time.Millisecond, "counted as expired")
	r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", bearer(tok))
	assert.Equal(t, http.StatusUnauthorized, r.status, "the reconnect with the same token is refused")
}

func (s *hubServer) mustPublishAuth(t *testing.T, tok, channel, data string) {
	t.Helper()
	b, err := json.Marshal(map[string]string{"channel": channel, "data": data})
	require.NoError(t, err)
	r := do(t, http.MethodPost, s.srv.URL+"/publish", string(b), bearer(tok))
	require.Equal(t, http.StatusAccepted, r.status, "publish: %s", r.err)
}

func TestAuthWithoutSecretPanics(t *testing.T) {
	h := actors.New(actors.Config{})
	defer func() { require.NoError(t, h.Shutdown(context.Background())) }()
	assert.PanicsWithValue(t, httpedge.ErrNoSecret, func() { httpedge.New(httpedge.Config{Hub: h, Auth: &httpedge.Auth{}}) })
}
