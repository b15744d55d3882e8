package httpedge_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

const (
	appOrigin  = "https://app.example"
	evilOrigin = "https://evil.example"
)

func preflight(origin, method, headers string) http.Header {
	return http.Header{
		"Origin":                         {origin},
		"Access-Control-Request-Method":  {method},
		"Access-Control-Request-Headers": {headers},
	}
}

func TestCORSPreflight(t *testing.T) {
	listed := newHubServer(t, actors.Config{}, httpedge.Config{CORSOrigins: []string{appOrigin, "http://localhost:3000"}})
	star := newHubServer(t, actors.Config{}, httpedge.Config{CORSOrigins: []string{"*"}})
	none := newHubServer(t, actors.Config{}, httpedge.Config{})
	tests := []struct {
		name        string
		srv         *hubServer
		path        string
		origin      string
		want        int
		allowOrigin string // "" means no CORS header at all
		credentials bool
		methods     string
	}{
		{"publish from a listed origin", listed, "/publish", appOrigin, 204, appOrigin, true, "POST"},
		{"events from a listed origin", listed, "/events", "http://localhost:3000", 204, "http://localhost:3000", true, "GET"},
		{"publish from another origin", listed, "/publish", evilOrigin, 403, "", false, ""},
		{"publish with * configured", star, "/publish", evilOrigin, 204, "*", false, "POST"},
		{"events with * configured", star, "/events", appOrigin, 204, "*", false, "GET"},
		{"no origin configured", none, "/publish", appOrigin, 405, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, http.MethodOptions, tt.srv.srv.URL+tt.path, "", preflight(tt.origin, "POST", "content-type,authorization"))
			require.Equal(t, tt.want, r.status, "reason: %s", r.err)
			assert.Equal(t, tt.allowOrigin, r.header.Get("Access-Control-Allow-Origin"))
			if tt.credentials {
				assert.Equal(t, "true", r.header.Get("Access-Control-Allow-Credentials"))
			} else {
				assert.Empty(t, r.header.Get("Access-Control-Allow-Credentials"))
			}
			if tt.allowOrigin == "" {
				assert.Empty(t, r.header.Get("Access-Control-Allow-Methods"))
				assert.Empty(t, r.header.Get("Access-Control-Allow-Headers"))
				return
			}
			assert.Equal(t, tt.methods, r.header.Get("Access-Control-Allow-Methods"))
			assert.Equal(t, "Content-Type, Authorization, Last-Event-ID, Cache-Control", r.header.Get("Access-Control-Allow-Headers"))
			assert.Equal(t, "600", r.header.Get("Access-Control-Max-Age"))
		})
	}
	r := do(t, http.MethodOptions, listed.srv.URL+"/publish", "", preflight(appOrigin, "POST", ""))
	assert.Equal(t, []string{"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"}, r.header.Values("Vary"),
		"a cache keeps one answer per origin and request")
}

func TestCORSActualRequests(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{CORSOrigins: []string{appOrigin}})
	t.Run("stream for a listed origin", func(t *testing.T) {
		r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", http.Header{"Origin": {appOrigin}})
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, appOrigin, r.header.Get("Access-Control-Allow-Origin"))
		assert.Equal(t, "true", r.header.Get("Access-Control-Allow-Credentials"))
		assert.Equal(t, "Origin", r.header.Get("Vary"))
		assert.Equal(t, "text/event-stream", r.header.Get("Content-Type"))
	})
	t.Run("stream for another origin: served, unreadable by its page", func(t *testing.T) {
		r := do(t, http.MethodGet, s.srv.URL+"/events?channel=a", "", http.Header{"Origin": {evilOrigin}})
		require.Equal(t, http.StatusOK, r.status)
		assert.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
		assert.Empty(t, r.header.Get("Access-Control-Allow-Credentials"))
		assert.Equal(t, "Origin", r.header.Get("Vary"))
	})
	t.Run("error answers carry CORS too", func(t *testing.T) {
		r := do(t, http.MethodGet, s.srv.URL+"/events", "", http.Header{"Origin": {appOrigin}})
		require.Equal(t, http.StatusBadRequest, r.status)
		assert.Equal(t, appOrigin, r.header.Get("Access-Control-Allow-Origin"))
		assert.Equal(t, "Retry-After", r.header.Get("Access-Control-Expose-Headers"))
	})
	t.Run("no Origin, no CORS headers", func(t *testing.T) {
		r := do(t, http.MethodGet, s.srv.URL+"/healthz", "", nil)
		assert.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
	})
}

// TestCrossOriginPublish: another site's page cannot publish through a
// visitor's browser (a form can post a JSON-looking body and carries the
// cookie); listed origins can.
func TestCrossOriginPublish(t *testing.T) {
	pub := sign(t, secret, claims("u1", time.Hour, []string{"*"}, nil))
	listed := newHubServer(t, actors.Config{}, httpedge.Config{CORSOrigins: []string{appOrigin}})
	star := newHubServer(t, actors.Config{}, httpedge.Config{CORSOrigins: []string{"*"}, Auth: &httpedge.Auth{Secret: secret}})
	none := newHubServer(t, actors.Config{}, httpedge.Config{})
	site := func(origin, fetchSite string, extra http.Header) http.Header {
		h := http.Header{"Content-Type": {"text/plain"}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if fetchSite != "" {
			h.Set("Sec-Fetch-Site", fetchSite)
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name   string
		srv    *hubServer
		header http.Header
		want   int
	}{
		{"listed origin", listed, site(appOrigin, "cross-site", nil), 202},
		{"other origin", listed, site(evilOrigin, "cross-site", nil), 403},
		{"other origin, old browser", listed, site(evilOrigin, "", nil), 403},
		{"same origin", listed, site("", "same-origin", nil), 202},
		{"not a browser", listed, site("", "", nil), 202},
		{"no CORS configured, cross-site", none, site(appOrigin, "cross-site", nil), 403},
		{"* with a bearer token", star, site(evilOrigin, "cross-site", bearer(pub)), 202},
		{"* with the cookie", star, site(evilOrigin, "cross-site", cookie("squall_token", pub)), 403},
		{"* with the cookie, same site", star, site("", "same-origin", cookie("squall_token", pub)), 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, http.MethodPost, tt.srv.srv.URL+"/publish", `{"channel":"a","data":1}`, tt.header)
			assert.Equal(t, tt.want, r.status, "reason: %s", r.err)
			if tt.want == 403 {
				assert.Contains(t, r.err, "cross-origin")
			}
		})
	}
}

func TestValidOrigin(t *testing.T) {
	for _, o := range []string{"*", "https://app.example", "http://localhost:3000", "http://[::1]:8080"} {
		assert.NoError(t, httpedge.ValidOrigin(o), o)
	}
	for _, o := range []string{"", "app.example", "https://app.example/", "https://app.example/path", "https://u@app.example", "https://app.example?x"} {
		assert.Error(t, httpedge.ValidOrigin(o), o)
	}
}
