package httpedge_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestDemoPage(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{Demo: true})
	tests := []struct {
		path     string
		status   int
		ctype    string
		contains string
	}{
		{"/", 200, "text/html; charset=utf-8", `<script type="module" src="demo/app.js"></script>`},
		{"/demo/app.js", 200, "text/javascript; charset=utf-8", "import { SquallStream } from '../squall.js';"},
		{"/demo/style.css", 200, "text/css; charset=utf-8", ".status[data-state=open]"},
		{"/demo/index.html", 404, "application/json", "no such demo asset"},
		{"/demo/../web/app.js", 404, "", ""},
		{"/index.html", 404, "", ""},
		{"/anything", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, s.srv.URL+tt.path, nil)
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.ctype != "" {
				assert.Equal(t, tt.ctype, resp.Header.Get("Content-Type"))
			}
			assert.Contains(t, body, tt.contains)
			if tt.status == 200 {
				assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
				assert.NotEmpty(t, resp.Header.Get("ETag"))
			}
		})
	}
	resp, _ := get(t, s.srv.URL+"/", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self'", "no inline script runs")
	assert.Contains(t, csp, "connect-src 'self'")
	again, body := get(t, s.srv.URL+"/", http.Header{"If-None-Match": {resp.Header.Get("ETag")}})
	assert.Equal(t, http.StatusNotModified, again.StatusCode)
	assert.Empty(t, body)
}

func TestDemoIsOptIn(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	resp, _ := get(t, s.srv.URL+"/", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
