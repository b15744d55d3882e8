package httpedge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
	"github.com/squall-sse/squall/internal/ssetest"
)

func resumeHeader(id string) http.Header { return http.Header{"Last-Event-Id": {id}} }

func seqs(t *testing.T, evs []string) []int {
	t.Helper()
	out := make([]int, len(evs))
	for i, d := range evs {
		n, err := strconv.Atoi(d)
		require.NoError(t, err, "event data %q is a sequence number", d)
		out[i] = n
	}
	return out
}

func TestResumeGetsExactlyWhatWasMissed(t *testing.T) {
	for _, given := range []bool{false, true} {
		t.Run(fmt.Sprintf("publisher ids=%v", given), func(t *testing.T) {
			s := newHubServer(t, actors.Config{}, httpedge.Config{})
			pub := func(i int) {
				if given {
					s.mustPublish(t, "a", strconv.Itoa(i), "id", fmt.Sprintf("evt-%d", i))
				} else {
					s.mustPublish(t, "a", strconv.Itoa(i))
				}
			}
			c := s.subscribe(t, "channel=a", nil)
			for i := range 3 {
				pub(i)
			}
			got := c.NextN(t, 3)
			c.Close()
			for i := 3; i < 53; i++ {
				pub(i)
			}
			c2 := s.subscribe(t, "channel=a", resumeHeader(got[2].ID))
			want := make([]int, 0, 50)
			for i := 3; i < 53; i++ {
				want = append(want, i)
			}
			assert.Equal(t, want, seqs(t, ssetest.Data(c2.NextN(t, 50))))
			pub(53)
			assert.Equal(t, "53", string(c2.Next(t).Data), "then live")
			assert.Empty(t, c2.Events, "no duplicate")
		})
	}
}

func TestResumeWhilePublishesContinue(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	c := s.subscribe(t, "channel=a", nil)
	var mu sync.Mutex
	published := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.mustPublish(t, "a", strconv.Itoa(i))
			mu.Lock()
			published = i + 1
			mu.Unlock()
		}
	}()
	var got []int
	var lastID string
	for round := range 5 {
		evs := c.NextN(t, 20)
		got = append(got, seqs(t, ssetest.Data(evs))...)
		lastID = evs[len(evs)-1].ID
		c.Close()
		c = s.subscribe(t, "channel=a", resumeHeader(lastID))
		_ = round
	}
	close(stop)
	<-done
	mu.Lock()
	total := published
	mu.Unlock()
	for len(got) < total {
		got = append(got, seqs(t, []string{string(c.Next(t).Data)})...)
	}
	want := make([]int, total)
	for i := range want {
		want[i] = i
	}
	assert.Equal(t, want, got, "every event once, in order, across 5 reconnects")
}

func TestResumeTwoChannels(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	c := s.subscribe(t, "channel=a&channel=b", nil)
	s.mustPublish(t, "a", "a0")
	s.mustPublish(t, "b", "b0")
	evs := c.NextN(t, 2)
	c.Close()
	s.mustPublish(t, "b", "b1")
	s.mustPublish(t, "a", "a1")
	s.mustPublish(t, "b", "b2")
	c2 := s.subscribe(t, "channel=a&channel=b", resumeHeader(evs[1].ID))
	got := ssetest.Data(c2.NextN(t, 3))
	// Each channel resumes in its own order; across channels the order is
	// whichever replay came first.
	var a, b []string
	for _, d := range got {
		if strings.HasPrefix(d, "a") {
			a = append(a, d)
		} else {
			b = append(b, d)
		}
	}
	assert.Equal(t, []string{"a1"}, a)
	assert.Equal(t, []string{"b1", "b2"}, b)
	assert.Empty(t, c2.Events)
}

func TestResetOnUnknownOrExpiredID(t *testing.T) {
	s := newHubServer(t, actors.Config{History: 5}, httpedge.Config{})
	first := s.mustPublish(t, "a", "0")
	// With 5 kept out of 10, the first id is two evictions behind: the client
	// missed event 1, which is gone.
	for i := 1; i < 10; i++ {
		s.mustPublish(t, "a", strconv.Itoa(i))
	}
	tests := []struct {
		name, lastID, reason string
	}{
		{"unknown id", "no-such-id", "unknown id"},
		{"older than the history (count)", first, "id older than the retained history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.subscribe(t, "channel=a", resumeHeader(tt.lastID))
			ev := c.Next(t)
			require.Equal(t, "reset", ev.Event)
			var reason map[string]string
			require.NoError(t, json.Unmarshal(ev.Data, &reason))
			assert.Equal(t, tt.reason, reason["reason"])
			assert.Equal(t, "a", reason["channel"])
			s.mustPublish(t, "a", "live")
			assert.Equal(t, "live", string(c.Next(t).Data), "then live, nothing replayed")
		})
	}
}

func TestHistoryKeepsOnlyTheLastN(t *testing.T) {
	s := newHubServer(t, actors.Config{History: 5}, httpedge.Config{})
	var ids []string
	for i := range 10 {
		ids = append(ids, s.mustPublish(t, "a", strconv.Itoa(i)))
	}
	c := s.subscribe(t, "channel=a", resumeHeader(ids[4]))
	assert.Equal(t, []string{"5", "6", "7", "8", "9"}, ssetest.Data(c.NextN(t, 5)), "the oldest retained is a valid resume point")
}

func TestHistoryExpiresByAge(t *testing.T) {
	s := newHubServer(t, actors.Config{HistoryTTL: 100 * time.Millisecond}, httpedge.Config{})
	id := s.mustPublish(t, "a", "0")
	s.mustPublish(t, "a", "1")
	c := s.subscribe(t, "channel=a", resumeHeader(id))
	assert.Equal(t, "1", string(c.Next(t).Data), "within the TTL, resume works")
	c.Close()
	// Once the TTL has passed, the same resume point is refused.
	require.Eventually(t, func() bool {
		c := s.subscribe(t, "channel=a", resumeHeader(id))
		defer c.Close()
		return c.Next(t).Event == "reset"
	}, wait, 20*time.Millisecond)
}

func TestResumeFromQueryParameter(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	id := s.mustPublish(t, "a", "0")
	s.mustPublish(t, "a", "1")
	c := s.subscribe(t, "channel=a&lastEventId="+id, nil)
	assert.Equal(t, "1", string(c.Next(t).Data))
}
