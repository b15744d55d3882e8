package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/squall-sse/squall/bench/internal/baseline"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faultyServer is a tiny SSE server that, on purpose, drops or repeats
// every nth event on its first stream: the generator must notice.
type faultyServer struct {
	mu     sync.Mutex
	subs   []chan string
	nextID int
	drop   bool
	nth    int
	ctx    context.Context
}

func (s *faultyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/debug/memstats":
		baseline.MemStatsHandler(w, r)
	case "/publish":
		var req struct {
			Channel string `json:"channel"`
			Data    string `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.nextID++
		id := s.nextID
		frame := fmt.Sprintf("id: %d\ndata: %s\n\n", id, req.Data)
		for i, q := range s.subs {
			measured := strings.HasPrefix(req.Data, "M")
			switch {
			case i == 0 && measured && id%s.nth == 0 && s.drop:
			case i == 0 && measured && id%s.nth == 0:
				q <- frame + frame
			default:
				q <- frame
			}
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":"%d"}`, id)
	case "/events":
		q := make(chan string, 4096)
		s.mu.Lock()
		s.subs = append(s.subs, q)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case f := <-q:
				if _, err := w.Write([]byte(f)); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			case <-s.ctx.Done():
				return
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func TestRunCatchesFaultyServer(t *testing.T) {
	tests := []struct {
		name     string
		drop     bool
		metric   string
		errorHas string
	}{
		{"silent loss", true, "lost events", "lost without a reset event"},
		{"duplicates", false, "duplicate events", "duplicate events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			srv := httptest.NewServer(&faultyServer{drop: tt.drop, nth: 5, ctx: ctx})
			defer srv.Close()
			defer cancel()
			res, err := Run(context.Background(), Config{
				Scenario: "fanout",
				Servers:  []string{srv.URL},
				Conns:    3,
				Duration: 200 * time.Millisecond,
				Rate:     50,
				Settle:   time.Millisecond,
				// Lost events never arrive: do not wait long for them.
				DrainTimeout: 100 * time.Millisecond,
				FinalDrain:   100 * time.Millisecond,
			})
			require.NoError(t, err, "Run")
			m, ok := res.Get(tt.metric)
			require.True(t, ok, tt.metric)
			assert.Positive(t, m.Value, tt.metric)
			assert.Contains(t, strings.Join(res.Errors, "\n"), tt.errorHas)
		})
	}
}
