package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/internal/browsertest"
)

// headlessChromium starts chromium taking the test certificates.
func headlessChromium(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Start(t, 90*time.Second, chromedp.Flag("ignore-certificate-errors", true))
}

// openTenEventSources opens 10 EventSources on channels b0…b9 from a page
// of the hub's origin, recording which opened and what each received.
const openTenEventSources = `(() => {
	window.opened = [];
	window.got = [];
	window.sources = [];
	for (let i = 0; i < 10; i++) {
		const es = new EventSource('/events?channel=b' + i);
		es.onopen = () => window.opened.push(i);
		es.onmessage = (e) => window.got.push(i + ':' + e.data);
		window.sources.push(es);
	}
	return true;
})()`

// TestBrowserTenEventSourcesOverHTTP2: a browser page opens 10 EventSources
// to one origin. Over HTTP/2 (TLS) all 10 open and receive on one
// connection; over HTTP/1.1 the browser holds 6 connections per origin,
// and the 7th EventSource stalls until one of the 6 closes.
func TestBrowserTenEventSourcesOverHTTP2(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	newTestCert(t, "localhost").install(t, certPath, keyPath)
	h := runHub(t, "https", insecureH2(), "--tls-cert", certPath, "--tls-key", keyPath)
	ctx := headlessChromium(t)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(h.base+"/healthz")))
	proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType('navigation')[0].nextHopProtocol`))
	require.NoError(t, err)
	assert.Equal(t, "h2", proto, "the page came over HTTP/2")
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](openTenEventSources))
	require.NoError(t, err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`window.opened.length === 10`, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "all 10 EventSources open over HTTP/2")
	for i := range 10 {
		h.publish(t, fmt.Sprintf("b%d", i), "h2")
	}
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`window.got.length === 10`, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "all 10 receive")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.got`))
	require.NoError(t, err)
	slices.Sort(got)
	assert.Equal(t, []string{"0:h2", "1:h2", "2:h2", "3:h2", "4:h2", "5:h2", "6:h2", "7:h2", "8:h2", "9:h2"}, got)
	assert.Contains(t, h.metrics(t), "\nsquall_streams_open 10\n")
}

func TestBrowserSeventhEventSourceStallsOverHTTP1(t *testing.T) {
	h := runHub(t, "http", http.DefaultClient)
	ctx := headlessChromium(t)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(h.base+"/healthz")))
	proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType('navigation')[0].nextHopProtocol`))
	require.NoError(t, err)
	assert.Equal(t, "http/1.1", proto)
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](openTenEventSources))
	require.NoError(t, err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`window.opened.length === 6`, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "6 EventSources open")
	require.Eventually(t, func() bool {
		return strings.Contains(h.metrics(t), "\nsquall_streams_open 6\n")
	}, 10*time.Second, 20*time.Millisecond, "the hub serves the 6 streams")

	// Every channel gets an event; only the 6 open streams can see one.
	for i := range 10 {
		h.publish(t, fmt.Sprintf("b%d", i), "h1")
	}
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`window.got.length === 6`, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err)
	stalled, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](
		`window.sources.map((es, i) => i).filter(i => !window.opened.includes(i) && window.sources[i].readyState === 0)`))
	require.NoError(t, err)
	assert.Len(t, stalled, 4, "the 7th to 10th are still connecting, their events missed")
	assert.Contains(t, h.metrics(t), "\nsquall_streams_open 6\n", "the hub never saw them")

	// Closing one of the 6 frees a connection: the 7th gets through.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`window.sources[window.opened[0]].close(), true`))
	require.NoError(t, err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`window.opened.length === 7`, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "the 7th opens once a connection is free")
}
