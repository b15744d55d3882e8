// Package client is a Go client for Server-Sent Events streams, such as
// the ones a Squall hub serves at GET /events. It behaves like a browser's
// EventSource, with the knobs a program needs: it parses with
// [github.com/squall-sse/squall/sse], reconnects on its own, and
// resumes with Last-Event-ID so that no event is lost while the server's
// history holds.
//
// [Connect] opens the first connection and returns a [Stream];
// [Stream.Next] (or a range loop over [Stream.Events]) returns events one
// at a time, reconnecting inside the call when a connection ends:
//
//	s, err := client.Connect(ctx, "http://localhost:8080/events?channel=orders", client.Config{
//		Header: http.Header{"Authorization": {"Bearer " + token}},
//	})
//	if err != nil {
//		return err // 401, 404, not an event stream, ctx done...
//	}
//	defer s.Close()
//	for ev, err := range s.Events(ctx) {
//		if err != nil {
//			return err
//		}
//		handle(ev.Event, ev.ID, ev.Data)
//	}
//
// # Reconnection
//
// After a connection ends, the Stream waits the reconnection time and
// sends a new request with Last-Event-ID set to the id of the last event
// it returned. The reconnection time is the server's last "retry:" field,
// else [Config.InitialRetry]. Consecutive failed attempts (no stream, or a
// stream that ended before any event) double it up to [Config.MaxRetry];
// a stream that delivers an event resets the count. Jitter only adds to
// the wait, so the server's hint is a minimum; so is a Retry-After on a
// 429 or 503.
//
// Responses are handled as the HTML spec has EventSource handle them,
// plus retries where HTTP says a retry may help:
//
//   - 200 with Content-Type text/event-stream: the stream.
//   - 200 with another Content-Type: [ErrContentType], final.
//   - 204 No Content: [ErrNoContent], final; the server's way to say stop.
//   - 408, 429, 5xx, network errors, a stream cut off, an idle timeout:
//     retried.
//   - Any other status: a final [*StatusError] carrying the status and the
//     server's JSON {"error": "..."} reason.
//
// A Squall hub that cannot resume from the Last-Event-ID it got sends the
// named event [ResetEvent] first: Next returns it like any other event,
// and the caller decides what missing events mean for it.
//
// [Config.OnConnect] and [Config.OnDisconnect] report every attempt with
// its outcome, reason and the wait that follows; [Stream.Stats] counts
// attempts, connects, reconnects and events.
//
// # Tokens
//
// [Config.Token] supplies the bearer token of each request, so a stream
// outlives its tokens: a Squall hub closes a stream when its token
// expires, with a "retry:" hint, and the reconnect asks the source for a
// token again. A 401 calls it once more, naming the refused token, and
// retries at once; a second 401 in a row ends the Stream.
//
// # Concurrency
//
// A Stream starts no goroutine of its own. Connecting, waiting and reading
// all happen on the goroutine that calls Connect or Next, and the hooks
// run there too. Next must not be called from two goroutines at once (it
// panics if it is); Stats and Close may be called from any goroutine at
// any time. The goroutines that exist while a Stream is open belong to
// net/http's transport, one or two per open connection, and end with it;
// a short-lived goroutine runs when a context cancels a read or when the
// idle timer fires.
//
// # Shutdown
//
// There are two ways to stop, and both return promptly:
//
//   - Cancel the context given to Next. Next returns the context's error
//     and closes the connection it was reading; the Stream stays usable,
//     and a later Next reconnects from the last event returned.
//   - Call [Stream.Close], from any goroutine. It closes the connection at
//     once, and a Next in progress returns [ErrClosed].
//
// Always Close a Stream that Connect returned: a Stream left open with
// nobody calling Next keeps its connection. Close does not wait for a Next
// in progress to return; that goroutine is the caller's own.
package client
