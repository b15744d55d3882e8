// Package ssetest is the SSE test client that the tests of every package
// share: a subscriber that reads one stream over a real socket with the
// spec parser of package sse and hands the test its events, comments,
// retry hints and, on request, its raw frames.
//
// # Concurrency
//
// Each [Client] reads on goroutines of its own, which [Client.Close] stops
// and waits for; [Subscribe] and [Open] register Close as a cleanup of the
// test, so goleak finds nothing left behind. A reader that finds its
// buffer full waits for the test to read: size [Options.Buffer] for what
// a test leaves unread.
package ssetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/sse"
)

// Wait is how long a Client waits for what a test expects before it fails
// the test.
const Wait = 5 * time.Second

// Options are a subscription's extras. The zero value subscribes with no
// header, a 10,000-event buffer and no raw frames.
type Options struct {
	// Header is sent with the GET.
	Header http.Header
	// Buffer is how many events (and frames, with Frames) the client holds
	// unread. Zero means 10,000.
	Buffer int
	// Frames keeps each raw frame but comments, as the server wrote it,
	// for byte-exact checks ([Client.NextFrame]). The parser reads the
	// same bytes.
	Frames bool
	// HTTP sends the GET (an HTTP/2 or TLS transport). Nil means
	// http.DefaultClient.
	HTTP *http.Client
}

// Client is one SSE subscriber over a real socket.
type Client struct {
	// Resp is the stream's response; its body belongs to the client.
	Resp *http.Response
	// Events are the events dispatched, in order; Retry is set on an
	// event whose block carried a retry field.
	Events chan sse.Event
	// Frames are the raw frames, comments left out; nil unless
	// Options.Frames.
	Frames chan string
	// Comments are the comment lines' text (a full buffer of 1,000 drops
	// the newest).
	Comments chan string
	// Retries are the stream's reconnection time each time it changes.
	Retries chan time.Duration
	// Done is closed when the stream has ended and the client stopped
	// reading.
	Done chan struct{}

	cancel context.CancelFunc
	err    error
}

// Subscribe opens a stream at url and requires a 200.
func Subscribe(t testing.TB, url string, o Options) *Client {
	t.Helper()
	c, status := Open(t, url, o)
	require.Equal(t, http.StatusOK, status, "GET %s", url)
	return c
}

// Open opens a stream at url. It returns the client and 200, or nil and
// the status of a refusal (whose body it has closed).
func Open(t testing.TB, url string, o Options) (*Client, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range o.Header {
		req.Header[k] = v
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err, "GET %s", url)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	if o.Buffer <= 0 {
		o.Buffer = 10000
	}
	c := &Client{Resp: resp, Events: make(chan sse.Event, o.Buffer), Comments: make(chan string, 1000),
		Retries: make(chan time.Duration, 100), Done: make(chan struct{}), cancel: cancel}
	var body io.Reader = resp.Body
	var split chan struct{}
	if o.Frames {
		c.Frames = make(chan string, o.Buffer)
		pr, pw := io.Pipe()
		split = make(chan struct{})
		go c.splitFrames(resp.Body, pw, split)
		body = pr
	}
	go c.parse(body, split)
	t.Cleanup(c.Close)
	return c, resp.StatusCode
}

// splitFrames cuts the raw bytes into frames and passes them on to the
// parser unchanged.
func (c *Client) splitFrames(body io.Reader, pw *io.PipeWriter, done chan struct{}) {
	defer close(done)
	br := bufio.NewReader(body)
	var frame strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		if _, err := pw.Write([]byte(line)); err != nil {
			return
		}
		frame.WriteString(line)
		if line == "\n" {
			if f := frame.String(); !strings.HasPrefix(f, ":") {
				c.Frames <- f
			}
			frame.Reset()
		}
	}
}

func (c *Client) parse(body io.Reader, split chan struct{}) {
	defer close(c.Done)
	defer c.Resp.Body.Close()
	p := sse.NewParser(body)
	p.Comment = func(text string) {
		select {
		case c.Comments <- text:
		default:
		}
	}
	var lastRetry time.Duration
	for {
		ev, err := p.Next()
		if r := p.Retry(); r != lastRetry {
			lastRetry = r
			c.Retries <- r
		}
		if err != nil {
			c.err = err
			if split != nil {
				if pr, ok := body.(*io.PipeReader); ok {
					pr.CloseWithError(err)
				}
				c.Resp.Body.Close()
				<-split
			}
			return
		}
		c.Events <- ev
	}
}

// Err is the reader's final error (io.EOF when the server ended the
// stream); valid once Done is closed.
func (c *Client) Err() error { return c.err }

// Close ends the stream from the client's side and waits for its readers.
func (c *Client) Close() {
	c.cancel()
	<-c.Done
}

// Next returns the next event, failing t after [Wait].
func (c *Client) Next(t testing.TB) sse.Event {
	t.Helper()
	return c.NextWithin(t, Wait)
}

// NextWithin returns the next event, failing t after d: for an event that
// comes only after a recovery whose time has its own bound (a reconnect
// backoff, a catch-up from history).
func (c *Client) NextWithin(t testing.TB, d time.Duration) sse.Event {
	t.Helper()
	select {
	case ev := <-c.Events:
		return ev
	case <-time.After(d):
		require.FailNow(t, fmt.Sprintf("no event within %v", d))
		return sse.Event{}
	}
}

// NextN returns the next n events.
func (c *Client) NextN(t testing.TB, n int) []sse.Event {
	t.Helper()
	out := make([]sse.Event, 0, n)
	for range n {
		out = append(out, c.Next(t))
	}
	return out
}

// RequireNext requires that the next event's data is data: with a marker
// published after everything else, that nothing else came before it.
func (c *Client) RequireNext(t testing.TB, data string) {
	t.Helper()
	require.Equal(t, data, string(c.Next(t).Data))
}

// NextFrame returns the next raw frame (Options.Frames), failing t after
// [Wait].
func (c *Client) NextFrame(t testing.TB) string {
	t.Helper()
	select {
	case f := <-c.Frames:
		return f
	case <-time.After(Wait):
		require.FailNow(t, "no frame within 5s")
		return ""
	}
}

// RequireEnded waits for the server to end the stream.
func (c *Client) RequireEnded(t testing.TB) {
	t.Helper()
	select {
	case <-c.Done:
	case <-time.After(Wait):
		require.FailNow(t, "stream still open after 5s")
	}
}

// Data returns the data of each event, as strings.
func Data(evs []sse.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.Data)
	}
	return out
}

// IDs returns the id of each event.
func IDs(evs []sse.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}
