package actors

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ageLog records the ages a connection actor reports.
type ageLog struct {
	nopObserver
	ages []time.Duration
}

func (l *ageLog) Flushed(_ int, oldest time.Duration) { l.ages = append(l.ages, oldest) }

// nullWriter takes every write, flush and deadline.
type nullWriter struct{ writes int }

func (*nullWriter) Header() http.Header              { return http.Header{} }
func (w *nullWriter) Write(b []byte) (int, error)    { w.writes++; return len(b), nil }
func (*nullWriter) WriteHeader(int)                  {}
func (*nullWriter) FlushError() error                { return nil }
func (*nullWriter) SetWriteDeadline(time.Time) error { return nil }

// A turn reads the clock once, before it takes its frames: one queued in
// between is younger than the turn's clock, and its age is reported as
// zero, never as a negative duration.
func TestFlushReportsNoNegativeAge(t *testing.T) {
	w := &nullWriter{}
	log := &ageLog{}
	s := &Stream{w: w, ctl: newWriteControl(w)}
	s.conn = connActor{s: s, obs: log, timeout: time.Second}
	now := time.Now()
	s.out.push(&frame{b: []byte("data: later\n\n"), at: now.Add(time.Millisecond)}, false)
	more, err := s.conn.flush(nil, now)
	require.NoError(t, err)
	assert.False(t, more)
	assert.Equal(t, 1, w.writes)
	assert.Equal(t, []time.Duration{0}, log.ages)
}
