package squall_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/internal/browsertest"
	"github.com/squall-sse/squall/sse"
)

// snippetPage runs the README's browser snippet as it is; show is the
// page's own function, as it would be the reader's.
const snippetPage = `<!doctype html><meta charset="utf-8"><title>snippet</title><ul id="log"></ul>
<script>
function show(data, id) {
  const li = document.createElement('li');
  li.dataset.id = id;
  li.textContent = JSON.stringify(data);
  document.getElementById('log').append(li);
}
const es = new EventSource('/sse/events?channel=orders', { withCredentials: true });
es.addEventListener('order_update', (e) => show(JSON.parse(e.data), e.lastEventId));
es.onopen = () => { document.body.dataset.open = 'yes'; };
</script>`

// TestBrowserSnippet runs the README's EventSource snippet in headless
// Chromium against a broker mounted under /sse/: the named event arrives
// with its JSON data and its id.
func TestBrowserSnippet(t *testing.T) {
	b, err := squall.New(squall.Config{})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /app", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, snippetPage)
	})
	mux.Handle("/sse/", b)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		assert.NoError(t, b.Shutdown(ctx))
		srv.Close()
	})
	ctx := browsertest.Start(t, 60*time.Second)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/app"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-open="yes"]`)),
	), "the snippet's EventSource opens")
	id, err := b.Publish(t.Context(), "orders", map[string]any{"orderId": "abc", "status": "paid"}, sse.WithEvent("order_update"))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#log li`))), "the event arrives")
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#log li`)))
	require.NoError(t, err)
	attrs, err := chromedp.Run(ctx, chromedp.Attributes(chromedp.CSS(`#log li`)))
	require.NoError(t, err)
	gotID := attrs["data-id"]
	assert.JSONEq(t, `{"orderId":"abc","status":"paid"}`, text, "the JSON data, parsed")
	assert.Equal(t, id, gotID, "e.lastEventId is the event's id")
}
