package httpedge_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/browsertest"
)

// browser starts a headless chromium with a fresh profile and watches its
// console; cleanup closes it, then waits for the console to end.
func browser(t *testing.T) (context.Context, *console) {
	t.Helper()
	var con *console
	// Registered first, so it runs after the browser is closed.
	t.Cleanup(func() {
		if con != nil {
			<-con.done
		}
	})
	ctx := browsertest.Start(t, 120*time.Second, chromedp.WindowSize(1100, 900))
	con = watchConsole(ctx)
	return ctx, con
}

// console collects what the page logs, until the browser closes.
type console struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
	done chan struct{}
}

func watchConsole(ctx context.Context) *console {
	c := &console{done: make(chan struct{})}
	messages := chromedp.Console(ctx)
	go func() {
		defer close(c.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *console) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning {
			out = append(out, m.String())
		}
	}
	return out
}

// TestDemoPageInBrowser drives the demo page in headless chromium: it
// subscribes with EventSource, shows an event published through the API,
// and publishes from its form.
func TestDemoPageInBrowser(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{Demo: true})
	ctx, con := browser(t)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(s.srv.URL+"/?channel=demo&events=order_update"),
		chromedp.WaitVisible(chromedp.CSS(`#status[data-state="open"]`)),
	), "the page's EventSource opens")

	id := s.mustPublish(t, "demo", map[string]any{"orderId": "abc-123", "status": "paid"}, "event", "order_update")
	sel := chromedp.CSS(`#log li[data-event="order_update"][data-id="` + id + `"]`)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(sel)), "the named event appears")
	text, err := chromedp.Run(ctx, chromedp.Text(sel))
	require.NoError(t, err)
	assert.Contains(t, text, `"orderId": "abc-123"`, "JSON data shown pretty-printed")
	assert.Contains(t, text, "order_update")

	// The form publishes through POST /publish; the page's own stream and
	// a Go subscriber both receive it.
	sub := s.subscribe(t, "channel=demo", nil)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("pub-data"), "typed in the browser"),
		chromedp.Click(chromedp.CSS(`input[name="as"][value="text"]`)),
		chromedp.Click(chromedp.CSS(`#publish button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#pub-result.ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#log li[data-event="message"]`)),
	))
	ev := sub.Next(t)
	assert.Equal(t, "typed in the browser", string(ev.Data))
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#log li[data-event="message"] .data`)))
	require.NoError(t, err)
	assert.Equal(t, "typed in the browser", strings.TrimSpace(text))
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("pub-result")))
	require.NoError(t, err)
	assert.Equal(t, "published, id "+ev.ID, result)

	if path := os.Getenv("SQUALL_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, png, 0o644))
	}
	assert.Empty(t, con.problems(), "no console errors (a CSP violation would show here)")
}
