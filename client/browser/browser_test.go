package browser_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/squall-sse/squall/client/browser"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func do(t *testing.T, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestHandler(t *testing.T) {
	mux := http.NewServeMux()
	for _, p := range browser.Paths() {
		mux.Handle(p, browser.Handler())
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		path, ctype, contains string
	}{
		{"/squall.js", "text/javascript; charset=utf-8", "export class SquallStream"},
		{"/squall.d.ts", "application/typescript; charset=utf-8", "export declare class SquallStream"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, srv.URL+tt.path, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tt.ctype, resp.Header.Get("Content-Type"))
			assert.Contains(t, body, tt.contains)
			assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"), "revalidated on every load")
			assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), "importable from another origin")
			etag := resp.Header.Get("ETag")
			require.NotEmpty(t, etag)

			again, body := do(t, http.MethodGet, srv.URL+tt.path, http.Header{"If-None-Match": {etag}})
			assert.Equal(t, http.StatusNotModified, again.StatusCode, "the validator answers 304")
			assert.Empty(t, body)

			head, body := do(t, http.MethodHead, srv.URL+tt.path, nil)
			assert.Equal(t, http.StatusOK, head.StatusCode)
			assert.Equal(t, tt.ctype, head.Header.Get("Content-Type"))
			assert.Empty(t, body)

			for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
				resp, body := do(t, m, srv.URL+tt.path, nil)
				assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
				assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), m)
				assert.JSONEq(t, `{"error": "`+m+` not allowed here: use GET or HEAD"}`, body, m)
			}
		})
	}
	resp, _ := do(t, http.MethodGet, srv.URL+"/squall.js", nil)
	assert.Equal(t, "/squall.d.ts", resp.Header.Get("X-TypeScript-Types"))
}

// TestTypesCoverExports checks that squall.d.ts declares every export of
// squall.js, so the types cannot fall behind the module.
func TestTypesCoverExports(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/squall.js", browser.Handler())
	mux.Handle("/squall.d.ts", browser.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, js := do(t, http.MethodGet, srv.URL+"/squall.js", nil)
	_, dts := do(t, http.MethodGet, srv.URL+"/squall.d.ts", nil)
	exports := exportRE.FindAllStringSubmatch(js, -1)
	require.NotEmpty(t, exports)
	for _, m := range exports {
		assert.Regexp(t, `export declare (const|function|class) `+m[2]+`\b`, dts, "squall.d.ts declares %s %s", m[1], m[2])
	}
}

var exportRE = regexp.MustCompile(`(?m)^export (const|function|class|async function) (\w+)`)
