// Package sse owns Squall's wire format: the text/event-stream encoding of
// events, comments and retry hints that every stream writes, and a parser
// that reads a stream exactly as a browser's EventSource does. It uses the
// standard library only, so that every other package (the actors, the
// Redis relay, the HTTP edge, the Go client and the bench client) can
// import it.
//
// # Encoding
//
// [AppendEvent] appends one frame to a caller's buffer without allocating,
// so a frame is built once per publish and the same bytes go to every
// subscriber. [Event.Validate], [ValidID] and [ValidName] refuse an id or
// event name with CR, LF or NUL instead of silently stripping it: a line
// break would inject fields, and browsers ignore an id with NUL, which
// breaks resume without a word. [MarshalData] turns a publish payload into
// data (strings and bytes raw, anything else compact JSON).
// [AppendComment], [AppendRetry] and the pre-encoded [Keepalive] write the
// blocks that dispatch no event. [EncodedLen] gives a frame's length
// without building it, so that an event too big for a stream's queue is
// refused before it is built (data of line breaks frames to about six
// times its size).
//
// # The hub's contract
//
// The rules every layer of Squall applies to what enters it have their one
// home here, so that the HTTP edge, the hub and the Redis relay cannot
// drift apart: [ValidChannel] (1 to [MaxChannel] bytes of ASCII letters,
// digits and -_.:@/), [MaxID] for an event id and a Last-Event-ID, and
// [MaxRetry] with [ParseRetryMillis] for a publisher's retry hint. They
// are stricter than the event-stream format, which a [Parser] reads in
// full.
//
// # Line breaks
//
// The event-stream grammar knows three line ends: CRLF, LF and CR. Data is
// split on exactly those, one "data:" line each, and the browser joins the
// lines with LF. Splitting on anything else would change the data: U+2028,
// U+2029, U+0085, VT, FF and the ASCII separators FS, GS and RS are
// ordinary characters to the browser, and a payload that contains them
// (JSON strings often carry U+2028) must arrive unchanged. So data comes
// out byte for byte, except that CRLF and CR arrive as LF, which no SSE
// encoder can avoid. A trailing line break is kept: "a\n" arrives as "a\n".
//
// # Parsing
//
// [Parser] follows the WHATWG HTML algorithm "interpret an event stream"
// step by step, including the details that simple parsers miss: the UTF-8
// decode with one U+FFFD per maximal invalid subsequence (which no Go
// standard conversion produces), one BOM skipped at the start only, a CR at
// the end of one read and an LF at the start of the next being one line
// end, the persistent last-event-ID buffer, and the event type reset by a
// block without data. It works incrementally with bounded memory
// ([Parser.MaxLineBytes], [Parser.MaxEventBytes]) and is checked against a
// literal transcription of the spec by a fuzzer that also cuts the input
// into reads at every point.
//
// # Differences from the Python SDK
//
// The Python SDK that Squall replaces (ServerSentEvent.encode in
// tempest_fastapi_sdk) writes the same frames for plain input; the
// differences are on purpose:
//
//   - It splits data with str.splitlines, which also breaks on U+2028,
//     U+2029, U+0085, VT, FF, FS, GS and RS, turning those characters into
//     line breaks, and drops a trailing line break ("a\n" arrives as "a").
//     Squall splits on CRLF, CR and LF only and keeps a trailing break.
//   - It writes id, event and comment values unchecked, so a line break in
//     them injects fields and a NUL in an id makes browsers drop it. Squall
//     returns ErrInvalidField; comments are split into several comment
//     lines.
//   - It accepts any int as retry, negative included. Squall takes a
//     time.Duration and writes whole milliseconds; a publisher's hint
//     must be 0 to MaxRetry, and 0 is written as "retry: 0" (RetryZero).
//   - It JSON-encodes with Python's json.dumps defaults: ASCII-only output
//     (\uXXXX escapes), spaces after ',' and ':', and str() for values JSON
//     cannot encode. Squall writes compact UTF-8 JSON without HTML escaping
//     and returns an error for values encoding/json cannot encode.
//   - It decodes bytes data as UTF-8 and fails on invalid bytes. Squall
//     sends bytes as they are; a browser shows invalid sequences as U+FFFD.
//   - It writes an empty data line as "data: " and fields in the order
//     comment, event, id, retry, data; Squall writes "data:" and id,
//     event, retry, data. Browsers see no difference.
//
// # Concurrency
//
// The encoding functions are safe for concurrent use; [Keepalive] is shared
// and must not be modified. A [Parser] belongs to one goroutine. The package
// starts no goroutine and holds no resource, so there is nothing to shut
// down.
package sse
