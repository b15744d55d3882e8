package httpedge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/redisrelay"
)

// harnessPage imports /squall.js (from the hub named by ?hub=, else from
// its own origin) and exposes it as window.squall; tests drive it with
// evalJS and wait on it with waitJS.
const harnessPage = `<!doctype html>
<meta charset="utf-8">
<title>squall.js harness</title>
<p id="error"></p>
<script type="module">
const hub = new URLSearchParams(location.search).get('hub') || '';
window.hub = hub;
window.squall = await import(hub + '/squall.js');
document.body.dataset.ready = 'yes';
</script>
`

func serveHarness(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(harnessPage))
}

// openHarness loads the harness at url and waits for its module.
func openHarness(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="yes"]`)),
	), "the harness at %s imports /squall.js", url)
}

func evalJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](expr))
	require.NoError(t, err, "evaluate %s", expr)
}

func jsValue[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, "evaluate %s", expr)
	return v
}

// waitJS waits until expr is truthy in the page.
func waitJS(t *testing.T, ctx context.Context, expr string, msgAndArgs ...any) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second)))
	require.NoError(t, err, msgAndArgs...)
}

// restartableNode is a cluster-mode hub (relay on the shared Redis) that a
// test stops like a killed process and starts again on the same address.
type restartableNode struct {
	t      *testing.T
	prefix string
	addr   string
	mount  func(*httpedge.Server)

	srv     *http.Server
	served  chan error
	hub     *actors.Hub
	relay   *redisrelay.Relay
	running bool
}

func newRestartableNode(t *testing.T, prefix string, mount func(*httpedge.Server)) *restartableNode {
	n := &restartableNode{t: t, prefix: prefix, addr: "127.0.0.1:0", mount: mount}
	n.start()
	t.Cleanup(n.kill)
	return n
}

func (n *restartableNode) url() string { return "http://" + n.addr }

func (n *restartableNode) start() {
	t := n.t
	t.Helper()
	relay, err := redisrelay.New(redisrelay.Config{URL: hostileRedis, Prefix: n.prefix, History: 100, PingInterval: 5 * time.Second})
	require.NoError(t, err, "redisrelay.New")
	hub := actorstest.NewHub(t, actors.Config{Cluster: relay, History: 100})
	relay.Start(hub.System(), hub)
	edge := httpedge.New(httpedge.Config{Hub: hub, Ready: relay.Ready})
	if n.mount != nil {
		n.mount(edge)
	}
	// The old socket's port may still be in TIME_WAIT: listening sockets
	// reuse the address, but give the kernel a moment if it disagrees.
	var ln net.Listener
	require.Eventually(t, func() bool {
		ln, err = net.Listen("tcp", n.addr)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "listen again on %s", n.addr)
	n.addr = ln.Addr().String()
	n.srv = &http.Server{Handler: edge, ReadHeaderTimeout: 10 * time.Second}
	n.served = make(chan error, 1)
	go func() { n.served <- n.srv.Serve(ln) }()
	n.hub, n.relay, n.running = hub, relay, true
	require.Eventually(t, func() bool { return relay.Ready() == nil }, wait, 5*time.Millisecond,
		"relay not subscribed: %v", relay.Ready())
}

// kill stops the node the way a killed process goes: the listener and
// every connection close at once, without a drain or a retry hint.
func (n *restartableNode) kill() {
	if !n.running {
		return
	}
	n.running = false
	require.NoError(n.t, n.srv.Close())
	require.ErrorIs(n.t, <-n.served, http.ErrServerClosed)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(n.t, n.hub.Shutdown(ctx), "Hub.Shutdown")
	require.NoError(n.t, n.relay.Shutdown(ctx), "Relay.Shutdown")
}

// reactLikeClient reconnects the way tempest-react-sdk's createEventStream
// does: on any error it closes the EventSource and opens a new one on the
// same URL after a backoff, which sends no Last-Event-ID.
const reactLikeClient = `
window.reactLike = (url, got) => {
  let es = null;
  let retries = 0;
  const connect = () => {
    es = new EventSource(url);
    window.reactLikeSource = es;
    es.onopen = () => { retries = 0; };
    es.onmessage = (e) => got.push(e.data);
    es.onerror = () => {
      es.close();
      setTimeout(connect, Math.min(100 * 2 ** retries++, 1000));
    };
  };
  connect();
};
`

// TestSquallJSResumesAcrossHubRestart kills the hub under three pages'
// streams, publishes through another node while it is down, and starts it
// again on the same address: SquallStream and the drop-in
// createEventStream get every event exactly once; the React SDK's way of
// reconnecting (a new EventSource without the id) loses the ones
// published while the hub was down.
func TestSquallJSResumesAcrossHubRestart(t *testing.T) {
	prefix := hostilePrefix(t)
	publisher := newClusterNode(t, prefix, actors.Config{History: 100}, httpedge.Config{})
	node := newRestartableNode(t, prefix, func(e *httpedge.Server) { e.Handle("/harness", http.HandlerFunc(serveHarness)) })
	ctx, _ := browser(t)
	openHarness(t, ctx, node.url()+"/harness")

	evalJS(t, ctx, reactLikeClient+`
window.got = { squall: [], drop: [], react: [] };
window.sq = new squall.SquallStream('/events?channel=resume', { initialDelay: 100, maxDelay: 1000 });
sq.on('message', (data) => got.squall.push(data));
window.drop = squall.createEventStream('/events?channel=resume', {
  initialBackoff: 100, maxBackoff: 1000,
  onMessage: (m) => got.drop.push(m.data),
});
reactLike('/events?channel=resume', got.react);
`)
	allOpen := `sq.state === 'open' && drop.status === 'open' && reactLikeSource.readyState === EventSource.OPEN`
	waitJS(t, ctx, allOpen, "the three streams open")

	publisher.mustPublish(t, "resume", "before-1")
	waitJS(t, ctx, `got.squall.length === 1 && got.drop.length === 1 && got.react.length === 1`, "before-1 arrives")

	node.kill()
	waitJS(t, ctx, `sq.state === 'reconnecting' && drop.status === 'closed' && reactLikeSource.readyState !== EventSource.OPEN`,
		"the streams see the hub go")
	for i := 1; i <= 3; i++ {
		publisher.mustPublish(t, "resume", fmt.Sprintf("gap-%d", i))
	}
	node.start()
	waitJS(t, ctx, allOpen, "the three streams back on the restarted hub")
	publisher.mustPublish(t, "resume", "after-1")
	waitJS(t, ctx, `got.squall.includes('after-1') && got.drop.includes('after-1') && got.react.includes('after-1')`, "after-1 arrives")

	want := []string{"before-1", "gap-1", "gap-2", "gap-3", "after-1"}
	assert.Equal(t, want, jsValue[[]string](t, ctx, `got.squall`), "SquallStream: each event exactly once, in order")
	assert.Equal(t, want, jsValue[[]string](t, ctx, `got.drop`), "createEventStream from /squall.js: the same")
	assert.Equal(t, []string{"before-1", "after-1"}, jsValue[[]string](t, ctx, `got.react`),
		"the React SDK's reconnect starts from live: what was published while the hub was down is lost")
	assert.NotEmpty(t, jsValue[string](t, ctx, `sq.lastEventId`))
}

// hostileEvents is a stream a hostile server could send: an id over the
// 8 KiB bound, event names that are Object.prototype's own, JSON whose
// keys try to reach a prototype, data that is not JSON; then it ends.
func hostileEvents() string {
	var b strings.Builder
	b.WriteString("id: " + strings.Repeat("x", 8193) + "\ndata: 1\n\n")
	b.WriteString("event: __proto__\nid: 7\ndata: {\"__proto__\": {\"polluted\": 1}, \"constructor\": {\"prototype\": {\"polluted\": 2}}}\n\n")
	b.WriteString("event: hasOwnProperty\nid: 8\ndata: 2\n\n")
	b.WriteString("event: toString\nid: 9\ndata: 3\n\n")
	b.WriteString("id: 10\ndata: not json\n\n")
	return b.String()
}

// TestSquallJSUnits checks the client's pure parts and its handling of a
// hostile server in Chromium: backoff bounds, which ids are kept and sent
// back, handler lookup by event name, reconnecting when the page comes
// back, and giving up after maxRetries.
func TestSquallJSUnits(t *testing.T) {
	var mu sync.Mutex
	var resumes []string // lastEventId of each request to /hostile
	var failing atomic.Int32
	s := newHubServer(t, actors.Config{History: 100}, httpedge.Config{})
	s.edge.Handle("/harness", http.HandlerFunc(serveHarness))
	s.edge.Handle("/hostile", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		resumes = append(resumes, r.URL.Query().Get("lastEventId"))
		first := len(resumes) == 1
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if first {
			_, _ = w.Write([]byte(hostileEvents()))
			return
		}
		_, _ = w.Write([]byte("id: 11\ndata: \"ok\"\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	s.edge.Handle("/failing", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		failing.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	// /busy/N answers 503 with Retry-After: N to an EventSource and its
	// probe, then streams; it notes when the probe and the reconnect came.
	type busy struct {
		n             int
		probe, second time.Time
	}
	busyByPath := map[string]*busy{}
	s.edge.Handle("/busy/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b := busyByPath[r.URL.Path]
		if b == nil {
			b = &busy{}
			busyByPath[r.URL.Path] = b
		}
		b.n++
		n := b.n
		switch n {
		case 2:
			b.probe = time.Now()
		case 3:
			b.second = time.Now()
		}
		mu.Unlock()
		if n <= 2 {
			w.Header().Set("Retry-After", strings.TrimPrefix(r.URL.Path, "/busy/"))
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("id: 1\ndata: ok\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	ctx, _ := browser(t)
	openHarness(t, ctx, s.srv.URL+"/harness")

	t.Run("Retry-After", func(t *testing.T) {
		assert.Equal(t, []int{1000, 2000, 0, 0, 0, 0, 0}, jsValue[[]int](t, ctx,
			`['1', ' 2 ', '1000000', 'Wed, 21 Oct 2015 07:28:00 GMT', '-1', '1e3', null].map(squall.retryAfter)`),
			"delay-seconds up to 6 digits; dates and anything else count as none")
		evalJS(t, ctx, `
window.ra = { one: [], long: [] };
window.ra1 = new squall.SquallStream('/busy/1', { initialDelay: 1, maxDelay: 5000 });
ra1.on('message', (d) => ra.one.push(d));
window.ra2 = new squall.SquallStream('/busy/3600', { initialDelay: 1, maxDelay: 50 });
ra2.on('message', (d) => ra.long.push(d));
`)
		waitJS(t, ctx, `ra.one.length === 1 && ra.long.length === 1`, "both reconnect; the hour-long Retry-After is cut to maxDelay")
		evalJS(t, ctx, `ra1.close(); ra2.close()`)
		mu.Lock()
		defer mu.Unlock()
		wait := busyByPath["/busy/1"].second.Sub(busyByPath["/busy/1"].probe)
		assert.GreaterOrEqual(t, wait, 900*time.Millisecond, "Retry-After: 1 is honoured over a 1 ms backoff")
	})

	t.Run("backoff", func(t *testing.T) {
		violations := jsValue[[]string](t, ctx, `(() => {
  const out = [];
  for (const [initial, max] of [[1000, 30000], [100, 1000], [1, 5], [0, 0]]) {
    for (let a = 0; a <= 80; a++) {
      const ceiling = Math.min(max, initial * 2 ** a);
      for (const r of [0, 1e-9, 0.5, 0.999999, 1, 5, -1, NaN]) {
        const d = squall.backoffDelay(a, initial, max, () => r);
        if (!Number.isInteger(d) || d < 0 || (ceiling > 0 && d >= ceiling) || (ceiling === 0 && d !== 0)) out.push([initial, max, a, r, d].join(' '));
      }
    }
  }
  for (const a of [-1, NaN, Infinity, '3', 1e308]) {
    const d = squall.backoffDelay(a, 1000, 30000, () => 0.999);
    if (!(d >= 0 && d < 30000)) out.push('attempt ' + a + ': ' + d);
  }
  return out;
})()`)
		assert.Empty(t, violations, "every delay is an integer in [0, min(max, initial*2^attempt))")
		assert.Equal(t, []int{500, 4000, 15000, 15000}, jsValue[[]int](t, ctx,
			`[0, 3, 5, 1000].map((a) => squall.backoffDelay(a, 1000, 30000, () => 0.5))`), "full jitter: half the ceiling at r=0.5")
		spread := jsValue[[]int](t, ctx, `(() => {
  const seen = new Set();
  for (let i = 0; i < 200; i++) seen.add(Math.floor(squall.backoffDelay(4, 1000, 30000) / 1600));
  return [...seen].sort((a, b) => a - b);
})()`)
		assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, spread, "Math.random spreads 200 delays over all ten tenths of [0, 16 s)")
	})

	t.Run("hostile stream", func(t *testing.T) {
		evalJS(t, ctx, `
window.h = { got: [], names: [], errors: [] };
window.hs = new squall.SquallStream('/hostile', {
  json: true, initialDelay: 10, maxDelay: 50,
  onError: (e) => h.errors.push(e.kind),
});
for (const name of ['message', '__proto__', 'hasOwnProperty', 'constructor']) hs.on(name, (data, meta) => { h.names.push(meta.event); h.got.push(data); });
`)
		waitJS(t, ctx, `h.got.includes('ok')`, "the stream reconnects to /hostile and gets ok")
		mu.Lock()
		assert.Equal(t, []string{"", "10"}, resumes, "the reconnect resumes from the last id that fits (10), not from the oversize one")
		mu.Unlock()
		assert.Equal(t, []string{"message", "__proto__", "hasOwnProperty", "message"}, jsValue[[]string](t, ctx, `h.names`),
			"handlers found by exact name; no handler for toString, and the data that is not JSON is not delivered")
		assert.Equal(t, "11", jsValue[string](t, ctx, `hs.lastEventId`))
		errs := jsValue[[]string](t, ctx, `h.errors`)
		assert.Contains(t, errs, "oversize", "the oversize id is reported")
		assert.Contains(t, errs, "parse", "the data that is not JSON is reported")
		assert.Contains(t, errs, "network", "the end of the first stream is reported, as retrying")
		assert.Equal(t, true, jsValue[bool](t, ctx,
			`({}).polluted === undefined && Object.prototype.polluted === undefined && Object.hasOwn(h.got[1], '__proto__')`),
			"a __proto__ key stays the parsed object's own key")
		evalJS(t, ctx, `hs.close()`)
		assert.Equal(t, "closed", jsValue[string](t, ctx, `hs.state`))
	})

	t.Run("page lifecycle", func(t *testing.T) {
		evalJS(t, ctx, `
window.life = [];
window.ls = new squall.SquallStream('/events?channel=life', { initialDelay: 60000, maxDelay: 60000 });
ls.on('message', (data) => life.push(data));
`)
		waitJS(t, ctx, `ls.state === 'open'`, "the stream opens")
		s.mustPublish(t, "life", "e1")
		waitJS(t, ctx, `life.length === 1`, "e1 arrives")

		// Into the back/forward cache: the stream closes, and nothing
		// reconnects until the page is shown again.
		evalJS(t, ctx, `dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true }))`)
		assert.Equal(t, "reconnecting", jsValue[string](t, ctx, `ls.state`))
		s.mustPublish(t, "life", "e2")
		evalJS(t, ctx, `dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }))`)
		waitJS(t, ctx, `ls.state === 'open' && life.length === 2`, "back from the cache at once (not after the 60 s backoff), resuming")

		// Frozen, then online: the same, from the Page Lifecycle events.
		evalJS(t, ctx, `dispatchEvent(new Event('freeze'))`)
		assert.Equal(t, "reconnecting", jsValue[string](t, ctx, `ls.state`))
		s.mustPublish(t, "life", "e3")
		evalJS(t, ctx, `dispatchEvent(new Event('online'))`)
		waitJS(t, ctx, `ls.state === 'open' && life.length === 3`, "online reconnects at once, resuming")
		assert.Equal(t, []string{"e1", "e2", "e3"}, jsValue[[]string](t, ctx, `life`))
		evalJS(t, ctx, `ls.close()`)
	})

	t.Run("token callback fails", func(t *testing.T) {
		evalJS(t, ctx, `
window.tk = { calls: 0, errors: [] };
window.tks = new squall.SquallStream('/events?channel=tok', {
  initialDelay: 10, maxDelay: 20,
  token: () => { if (++tk.calls === 1) throw new Error('no session yet'); return 'unused-without-auth'; },
  onError: (e) => tk.errors.push(e.kind + ':' + e.fatal + ':' + e.message),
});
`)
		waitJS(t, ctx, `tks.state === 'open'`, "the second token call opens the stream")
		assert.Equal(t, 2, jsValue[int](t, ctx, `tk.calls`))
		assert.Equal(t, []string{"token:false:token callback failed: no session yet"}, jsValue[[]string](t, ctx, `tk.errors`))
		evalJS(t, ctx, `tks.close()`)
	})

	t.Run("maxRetries", func(t *testing.T) {
		evalJS(t, ctx, `
window.f = { errors: [] };
window.fs = new squall.SquallStream('/failing', { maxRetries: 2, initialDelay: 10, maxDelay: 20, onError: (e) => f.errors.push(e.kind + ':' + e.fatal) });
`)
		waitJS(t, ctx, `fs.state === 'closed'`, "the stream gives up")
		assert.Equal(t, []string{"network:false", "network:false", "retries:true"}, jsValue[[]string](t, ctx, `f.errors`))
		assert.Equal(t, "retries", jsValue[string](t, ctx, `fs.error.kind`))
		// Each of the three attempts is an EventSource request and a probe
		// (a 503 is not a refusal, so it retries).
		assert.Equal(t, int32(6), failing.Load())
	})
}

// authHub is a hub with auth whose /token mints a token for channel
// "private" per call, valid for the next ttl(call) (call counts from 1).
type authHub struct {
	*hubServer
	secret []byte
	tokens atomic.Int32
}

func newAuthHub(t *testing.T, edge httpedge.Config, ttl func(call int32) time.Duration, opts ...func(*httptest.Server)) *authHub {
	a := &authHub{secret: []byte("squall-browser-test-secret-0123456789")}
	edge.Auth = &httpedge.Auth{Secret: a.secret, ExpiryRetry: 50 * time.Millisecond}
	a.hubServer = newHubServer(t, actors.Config{History: 100}, edge, opts...)
	a.edge.Handle("/harness", http.HandlerFunc(serveHarness))
	a.edge.Handle("/token", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(a.token(t, ttl(a.tokens.Add(1)))))
	}))
	// /login sets the cookie, as an application's backend would.
	a.edge.Handle("/login", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: httpedge.DefaultAuthCookie, Value: a.token(t, time.Hour), Path: "/", HttpOnly: true})
		_, _ = w.Write([]byte("logged in"))
	}))
	return a
}

func (a *authHub) token(t *testing.T, ttl time.Duration) string {
	tok, err := httpedge.SignToken(a.secret, httpedge.Claims{
		RegisteredClaims: expiresIn(ttl),
		Publish:          []string{"private"},
		Subscribe:        []string{"private"},
	})
	require.NoError(t, err)
	return tok
}

func (a *authHub) publish(t *testing.T, data string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"channel": "private", "data": data})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+"/publish", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+a.token(t, time.Hour))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "publish %s", data)
}

// TestSquallJSCookieAuthAnd401 loads the page from another origin: with
// withCredentials the hub's cookie goes along and events flow; without it
// the hub answers 401, and the stream stops at once (one EventSource
// request and one probe) with the hub's reason on the page.
func TestSquallJSCookieAuthAnd401(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(serveHarness))
	t.Cleanup(page.Close)
	var noCookie atomic.Int32
	countBare := func(srv *httptest.Server) {
		inner := srv.Config.Handler
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/events" && r.Header.Get("Cookie") == "" {
				noCookie.Add(1)
			}
			inner.ServeHTTP(w, r)
		})
	}
	a := newAuthHub(t, httpedge.Config{CORSOrigins: []string{page.URL}}, func(int32) time.Duration { return time.Hour }, countBare)
	ctx, _ := browser(t)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(a.srv.URL+"/login")), "the hub's origin sets the cookie")
	openHarness(t, ctx, page.URL+"/harness?hub="+a.srv.URL)
	evalJS(t, ctx, `
window.got = [];
window.withCookie = new squall.SquallStream(hub + '/events?channel=private', { withCredentials: true });
withCookie.on('message', (data) => got.push(data));
window.without = new squall.SquallStream(hub + '/events?channel=private', {
  initialDelay: 10, maxDelay: 20,
  onError: (err) => { if (err.fatal) document.getElementById('error').textContent = err.message; },
});
`)
	waitJS(t, ctx, `withCookie.state === 'open'`, "the cookie authenticates the cross-origin stream")
	a.publish(t, "for cookie holders")
	waitJS(t, ctx, `got.length === 1`, "the event arrives")
	assert.Equal(t, []string{"for cookie holders"}, jsValue[[]string](t, ctx, `got`))

	waitJS(t, ctx, `without.state === 'closed'`, "the stream without credentials stops")
	assert.Equal(t, "auth", jsValue[string](t, ctx, `without.error.kind`))
	assert.Equal(t, 401, jsValue[int](t, ctx, `without.error.status`))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error")))
	require.NoError(t, err)
	assert.Contains(t, text, "missing token", "the hub's reason is on the page")
	assert.Equal(t, int32(2), noCookie.Load(), "one EventSource request and one probe")
	assert.Never(t, func() bool { return noCookie.Load() != 2 }, time.Second, 20*time.Millisecond,
		"no retry after a 401 (a retry would come within 20 ms)")
}

// TestSquallJSTokenCallback gives the stream a token that expires within
// three seconds: the hub closes the stream at expiry, and the client calls the
// token callback again for its reconnect, resuming without a duplicate.
func TestSquallJSTokenCallback(t *testing.T) {
	a := newAuthHub(t, httpedge.Config{}, func(call int32) time.Duration {
		if call == 1 {
			return 3 * time.Second // exp has whole seconds: 2 to 3 s left
		}
		return time.Hour
	})
	ctx, _ := browser(t)
	openHarness(t, ctx, a.srv.URL+"/harness")
	evalJS(t, ctx, `
window.got = [];
window.opens = 0;
window.ts = new squall.SquallStream('/events?channel=private', {
  initialDelay: 10, maxDelay: 20,
  token: async () => (await fetch('/token')).text(),
  onOpen: () => { opens++; },
});
ts.on('message', (data) => got.push(data));
`)
	waitJS(t, ctx, `opens === 1`, "the first token opens the stream")
	a.publish(t, "e1")
	waitJS(t, ctx, `got.length === 1`, "e1 arrives")
	waitJS(t, ctx, `opens === 2`, "the stream is back after its token expired")
	assert.Equal(t, int32(2), a.tokens.Load(), "the token callback ran for the connect and the reconnect")
	a.publish(t, "e2")
	waitJS(t, ctx, `got.length >= 2`, "e2 arrives")
	assert.Equal(t, []string{"e1", "e2"}, jsValue[[]string](t, ctx, `got`), "e1 is not replayed: the reconnect resumed after it")
}

func expiresIn(ttl time.Duration) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{Subject: "browser", ExpiresAt: jwt.NewNumericDate(time.Now().Add(ttl))}
}
