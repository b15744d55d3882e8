package actors

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A frame at the queue bound must reach a stream whose outbox holds nothing
// but a heartbeat: the heartbeat gives way instead of cutting the stream.
func TestFrameAtTheBoundReplacesAQueuedHeartbeat(t *testing.T) {
	const bound = 1 << 10
	for _, policy := range []Overflow{Disconnect, DropNewest, DropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			o := outbox{policy: policy, maxFrame: 1000, maxBytes: bound}
			require.True(t, o.pushIdle(&frame{b: []byte(": keepalive\n\n"), beat: true}))
			big := &frame{b: bytes.Repeat([]byte("x"), bound)}
			wake, dropped, kick := o.push(big, false)
			assert.False(t, kick, "the stream is not cut")
			assert.Zero(t, dropped, "the frame is not dropped")
			assert.False(t, wake, "the heartbeat's wake-up is still on its way")
			got, _ := o.take(nil, 0)
			require.Len(t, got, 1)
			assert.Same(t, big, got[0])
		})
	}
}
