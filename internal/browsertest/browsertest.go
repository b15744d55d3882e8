// Package browsertest starts headless Chromium for the tests that run
// Squall's pages, snippets and HTTP/2 streams in a real browser.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// Start starts Debian's chromium headless with a fresh profile and opts,
// for at most timeout; cleanup closes it and waits for it to exit. A
// missing browser fails the test, since what it checks is part of the
// product and scripts/deps.sh installs it; SQUALL_SKIP_BROWSER=1 skips it.
func Start(t testing.TB, timeout time.Duration, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if os.Getenv("SQUALL_SKIP_BROWSER") == "1" {
		t.Skip("SQUALL_SKIP_BROWSER=1")
	}
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	require.NotEmpty(t, path, "chromium is not installed: run scripts/deps.sh (or set SQUALL_SKIP_BROWSER=1)")
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}, opts...)...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		closeCtx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		_ = chromedp.Cancel(closeCtx)
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})
	return bctx
}
