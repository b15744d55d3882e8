package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A channel's streams yield before they write only while its events come
// faster than a wave of writes to all of them: a lone broadcast, the first
// of a burst and a small channel's events are written at once.
func TestCrowdedOnlyWhileEventsOutrunTheWave(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		subs  int
		after time.Duration // since the previous event; 0: the first
		want  bool
	}{
		{"first event of a broadcast channel", 16000, 0, false},
		{"broadcast a second after the last", 16000, time.Second, false},
		{"broadcast within its wave", 16000, 16000*waveCost - time.Microsecond, true},
		{"broadcast just past its wave", 16000, 16000 * waveCost, false},
		{"1,000 streams at 1,000 events/s", 1000, time.Millisecond, true},
		{"1,000 streams at 100 events/s", 1000, 10 * time.Millisecond, false},
		{"small channel flat out", crowdedFanout - 1, time.Microsecond, false},
		{"at the crowded bound flat out", crowdedFanout, time.Microsecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &channelActor{subs: make([]*Stream, tc.subs)}
			at := t0
			if tc.after > 0 {
				a.lastEvent = t0
				at = t0.Add(tc.after)
			}
			assert.Equal(t, tc.want, a.crowded(at))
		})
	}
}
