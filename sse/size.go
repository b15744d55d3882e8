package sse

import (
	"bytes"
	"strconv"
)

// EncodedLen returns the length of the frame [AppendEvent] writes for e,
// without building it: a publisher can refuse an event whose frame would
// not fit a stream's queue before it takes the memory. It does not
// validate e; for an invalid e the result is meaningless.
//
// Data with many line breaks frames to several times its size: each line
// costs a "data:" prefix, a space when not empty, and an LF, so 700 KB of
// LF frames to about 4.2 MB.
func EncodedLen(e Event) int {
	n := 0
	if e.ID != "" {
		n += len("id: ") + len(e.ID) + 1
	}
	if e.Event != "" {
		n += len("event: ") + len(e.Event) + 1
	}
	if ms, ok := e.retryMillis(); ok {
		n += len("retry: ") + digits(ms) + 1
	}
	return n + dataLen(e.Data) + 1
}

// dataLen is the length of the "data:" lines appendLines writes for data:
// every line costs "data:" and an LF, a non-empty one also a space and
// its bytes. The line ends themselves are not copied.
func dataLen(data []byte) int {
	n := 0
	for {
		i := indexLineEnd(data, bytes.IndexByte)
		line := len(data)
		if i >= 0 {
			line = i
		}
		n += len("data:\n")
		if line > 0 {
			n += 1 + line
		}
		if i < 0 {
			return n
		}
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

func digits(v int64) int {
	var b [20]byte
	return len(strconv.AppendInt(b[:0], v, 10))
}
