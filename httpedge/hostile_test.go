package httpedge_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// rawRequest sends raw bytes on a new connection and reads the status line
// of the first answer; the caller closes the connection.
func rawRequest(t *testing.T, addr, req string) (int, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = io.WriteString(c, req)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	require.NoError(t, err, "status line of %q", req)
	f := strings.Fields(line)
	require.GreaterOrEqual(t, len(f), 2, "status line %q", line)
	code, err := strconv.Atoi(f[1])
	require.NoError(t, err)
	return code, c, br
}

// streamsOpen reads squall_streams_open from /metrics.
func streamsOpen(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "squall_streams_open "); ok {
			return v
		}
	}
	require.FailNow(t, "no squall_streams_open in /metrics")
	return ""
}

// TestHostileZombieStreams: only a GET without a body opens a stream, every
// other method on every route is 405 with Allow, and whatever a client sends
// its stream ends when it leaves, so the stream cap is never held by
// clients that are gone.
func TestHostileZombieStreams(t *testing.T) {
	const maxStreams = 3
	const hdr = " HTTP/1.1\r\nHost: hub\r\n"
	const next = "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n"

	t.Run("shapes that cannot notice their client are refused", func(t *testing.T) {
		// No heartbeat: a stream that cannot see its client leave would
		// stay open for good.
		m := httpedge.NewMetrics()
		s := newHubServer(t, actors.Config{Observer: m, Heartbeat: -1}, httpedge.Config{Metrics: m, MaxStreams: maxStreams, Demo: true})
		addr := s.srv.Listener.Addr().String()
		shapes := []struct {
			name string
			req  string
			want int
		}{
			// A Go http.Client sends its next request on the same
			// connection once the HEAD's headers are in, which stops
			// net/http from watching for the client leaving.
			{"HEAD, then the next request", "HEAD /events?channel=z" + hdr + "\r\n" + next, 405},
			{"HEAD with a body", "HEAD /events?channel=z" + hdr + "Content-Length: 4\r\n\r\nabcd", 405},
			{"GET with a Content-Length body never sent", "GET /events?channel=z" + hdr + "Content-Length: 100\r\n\r\nab", 400},
			{"GET with a chunked body", "GET /events?channel=z" + hdr + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 400},
			{"GET expecting 100-continue", "GET /events?channel=z" + hdr + "Content-Length: 10\r\nExpect: 100-continue\r\n\r\n", 400},
			{"POST", "POST /events?channel=z" + hdr + "Content-Length: 0\r\n\r\n", 405},
			{"PUT", "PUT /events?channel=z" + hdr + "Content-Length: 0\r\n\r\n", 405},
			{"OPTIONS", "OPTIONS /events?channel=z" + hdr + "\r\n", 405},
		}
		for _, sh := range shapes {
			t.Run(sh.name, func(t *testing.T) {
				// More of each than the cap: a leftover would show as a 503.
				for range maxStreams + 2 {
					code, c, _ := rawRequest(t, addr, sh.req)
					assert.Equal(t, sh.want, code, "answer to %q", sh.req)
					require.NoError(t, c.Close())
				}
				require.Eventually(t, func() bool { return s.hub.OpenStreams() == 0 }, wait, 5*time.Millisecond,
					"streams left open by %s after the clients left", sh.name)
			})
		}
		for range maxStreams {
			s.subscribe(t, "channel=z", nil) // the cap is all there
		}
		s.mustPublish(t, "z", "still serving")
	})

	t.Run("shapes that are reaped by the heartbeat", func(t *testing.T) {
		m := httpedge.NewMetrics()
		s := newHubServer(t, actors.Config{Observer: m, Heartbeat: 50 * time.Millisecond}, httpedge.Config{Metrics: m, MaxStreams: maxStreams})
		addr := s.srv.Listener.Addr().String()
		for _, req := range []string{
			"GET /events?channel=z" + hdr + "\r\n",
			// A pipelined request stops net/http's watch for EOF; the
			// heartbeat's failed write ends the stream instead.
			"GET /events?channel=z" + hdr + "\r\n" + next,
		} {
			for range maxStreams + 2 {
				code, c, _ := rawRequest(t, addr, req)
				require.Equal(t, http.StatusOK, code)
				require.NoError(t, c.Close())
				require.Eventually(t, func() bool { return s.hub.OpenStreams() == 0 }, wait, 5*time.Millisecond,
					"stream of %q left open after its client left", req)
			}
		}
		assert.Equal(t, "0", streamsOpen(t, s.srv.URL))
	})

	t.Run("a Go client reuses its connection after a HEAD", func(t *testing.T) {
		m := httpedge.NewMetrics()
		s := newHubServer(t, actors.Config{Observer: m}, httpedge.Config{Metrics: m, MaxStreams: 1})
		tr := &http.Transport{MaxConnsPerHost: 1}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
		for range 3 {
			req, err := http.NewRequest(http.MethodHead, s.srv.URL+"/events?channel=z", nil)
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "HEAD /events")
			assert.Equal(t, "GET", resp.Header.Get("Allow"))

			var reused bool
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
			})
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+"/healthz", nil)
			require.NoError(t, err)
			resp, err = client.Do(req)
			require.NoError(t, err, "GET /healthz on the connection of the HEAD")
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.True(t, reused, "the HEAD's connection was reused")
		}
		assert.Equal(t, "0", streamsOpen(t, s.srv.URL))
		s.subscribe(t, "channel=z", nil) // the one slot is free
	})

	t.Run("every other method on every route is 405 with Allow", func(t *testing.T) {
		m := httpedge.NewMetrics()
		s := newHubServer(t, actors.Config{Observer: m}, httpedge.Config{Metrics: m, Demo: true})
		routes := []struct{ path, allow string }{
			{"/events?channel=z", "GET"}, {"/publish", "POST"}, {"/healthz", "GET"}, {"/readyz", "GET"},
			{"/metrics", "GET"}, {"/", "GET"}, {"/demo/app.js", "GET"},
		}
		// A timeout: on a HEAD stream's connection the next request hangs.
		client := &http.Client{Timeout: 2 * time.Second}
		for _, rt := range routes {
			for _, method := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
				if method == rt.allow {
					continue
				}
				req, err := http.NewRequest(method, s.srv.URL+rt.path, nil)
				require.NoError(t, err)
				resp, err := client.Do(req)
				require.NoError(t, err, "%s %s", method, rt.path)
				resp.Body.Close()
				assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", method, rt.path)
				assert.Equal(t, rt.allow, resp.Header.Get("Allow"), "Allow of %s %s", method, rt.path)
			}
		}
		assert.Equal(t, "0", streamsOpen(t, s.srv.URL))

		cors := newHubServer(t, actors.Config{}, httpedge.Config{CORSOrigins: []string{appOrigin}})
		r := do(t, http.MethodOptions, cors.srv.URL+"/events", "", preflight(appOrigin, "GET", ""))
		assert.Equal(t, http.StatusNoContent, r.status, "OPTIONS stays a CORS preflight")
		r = do(t, http.MethodOptions, cors.srv.URL+"/events", "", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, r.status, "OPTIONS that is no preflight")
	})
}

// TestHostileCORSVary: every answer whose Access-Control-Allow-Origin
// depends on Origin says so with Vary: Origin, allowed or denied, preflight
// or not, with listed origins and with "*", so a shared cache never hands
// one origin's answer to another.
func TestHostileCORSVary(t *testing.T) {
	for _, origins := range [][]string{{appOrigin}, {"*"}, {appOrigin, "*"}} {
		s := newHubServer(t, actors.Config{}, httpedge.Config{CORSOrigins: origins, Metrics: httpedge.NewMetrics(), Demo: true})
		for _, origin := range []string{"", appOrigin, evilOrigin} {
			h := http.Header{}
			if origin != "" {
				h.Set("Origin", origin)
			}
			for _, rq := range []struct{ method, path, body string }{
				{"GET", "/events?channel=a", ""},
				{"GET", "/events", ""}, // 400
				{"POST", "/publish", `{"channel":"a","data":1}`},
				{"POST", "/publish", `{`}, // 400
				{"GET", "/healthz", ""}, {"GET", "/readyz", ""}, {"GET", "/metrics", ""},
				{"GET", "/", ""}, {"GET", "/demo/app.js", ""}, {"GET", "/nothing", ""},
				{"DELETE", "/publish", ""}, // 405
				{"OPTIONS", "/publish", ""},
			} {
				hh := h.Clone()
				if rq.method == "OPTIONS" && origin != "" {
					hh = preflight(origin, "POST", "content-type")
				}
				r := do(t, rq.method, s.srv.URL+rq.path, rq.body, hh)
				assert.Contains(t, r.header.Values("Vary"), "Origin",
					"Vary of %s %s from %q with origins %v (status %d)", rq.method, rq.path, origin, origins, r.status)
			}
		}
	}
}
