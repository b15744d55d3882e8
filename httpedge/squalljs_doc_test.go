package httpedge_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// The pages below are the snippets of docs/browser.md, run as written.

// ordersPage subscribes with SquallStream; render and showError stand for
// the application's own code.
const ordersPage = `<!doctype html>
<meta charset="utf-8">
<title>orders</title>
<link rel="icon" href="data:,">
<ol id="orders"></ol>
<p id="error"></p>
<script>
function render(order) {
  const li = document.createElement('li');
  li.textContent = order.orderId + ' ' + order.status;
  document.getElementById('orders').append(li);
}
function showError(message) { document.getElementById('error').textContent = message; }
</script>
<script type="module">
import { SquallStream } from '/squall.js';

const stream = new SquallStream('/events?channel=orders', {
  withCredentials: true,
  json: ['order_update'],
  onError: (err) => { if (err.fatal) showError(err.message); },
});
stream.on('order_update', (order) => render(order));
window.stream = stream;
</script>
`

// migratedPage is a tempest-react-sdk caller after the import line
// changed: same options, same callback.
const migratedPage = `<!doctype html>
<meta charset="utf-8">
<title>migrated</title>
<link rel="icon" href="data:,">
<script type="module">
window.seen = [];
const log = (event, data) => window.seen.push({ event, data });
import { createEventStream } from '/squall.js';

const stream = createEventStream('/events?channel=orders', {
  withCredentials: true,
  namedEvents: ['order_update'],
  onMessage: (m) => log(m.event, m.data),
});
window.stream = stream;
</script>
`

// openPage serves page from a fresh hub at /page.html, opens it in
// Chromium, and waits until its window.stream is open.
func openPage(t *testing.T, page, open string) (*hubServer, context.Context, *console) {
	t.Helper()
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	s.edge.Handle("/page.html", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	ctx, con := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/page.html")))
	waitJS(t, ctx, `window.stream && `+open, "the page's stream opens")
	return s, ctx, con
}

// TestSquallJSDocExample runs the SquallStream snippet of docs/browser.md.
func TestSquallJSDocExample(t *testing.T) {
	s, ctx, con := openPage(t, ordersPage, `stream.state === 'open'`)

	s.mustPublish(t, "orders", map[string]any{"orderId": "abc-123", "status": "paid"}, "event", "order_update")
	waitJS(t, ctx, `document.querySelectorAll('#orders li').length === 1`, "the order is rendered")
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#orders li`)))
	require.NoError(t, err)
	assert.Equal(t, "abc-123 paid", text, "data parsed as JSON for order_update")
	assert.Empty(t, con.problems())
}

// TestSquallJSMigrationExample runs the tempest-react-sdk migration
// snippet of docs/browser.md.
func TestSquallJSMigrationExample(t *testing.T) {
	s, ctx, con := openPage(t, migratedPage, `stream.status === 'open'`)

	s.mustPublish(t, "orders", map[string]any{"orderId": "abc-123"}, "event", "order_update")
	s.mustPublish(t, "orders", "plain text")
	waitJS(t, ctx, `seen.length === 2`, "both events arrive")
	type seen struct {
		Event string `json:"event"`
		Data  any    `json:"data"`
	}
	assert.Equal(t, []seen{
		{"order_update", map[string]any{"orderId": "abc-123"}},
		{"message", "plain text"},
	}, jsValue[[]seen](t, ctx, `seen`), "named events and JSON with a raw-string fallback, as tempest-react-sdk's parser")
	evalJS(t, ctx, `stream.close()`)
	assert.Equal(t, "closed", jsValue[string](t, ctx, `stream.status`))
	assert.Empty(t, con.problems())
}
