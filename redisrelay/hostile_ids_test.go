package redisrelay_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/squall-sse/squall/internal/ssetest"
	"github.com/squall-sse/squall/redisrelay"
)

// TestHostileAmbiguousIDs: a publisher reuses ids. Resume never sends an
// event at or before the client's last one, and an ambiguous id resumes
// from its most recent occurrence, on either hub.
func TestHostileAmbiguousIDs(t *testing.T) {
	a, b := twoNodes(t, redisrelay.Config{})
	tests := []struct {
		name string
		ids  string // the publisher's ids, in order; event k has data dk
		last string
		want []string // data of the replayed events
	}{
		{name: "e2 again, last e4", ids: "e1 e2 e3 e4 e5 e2", last: "e4", want: []string{"d4", "d5"}},
		{name: "e2 again, last the second e2", ids: "e1 e2 e3 e4 e5 e2", last: "e2", want: []string{}},
		{name: "e2 again, last e1", ids: "e1 e2 e3 e4 e5 e2", last: "e1", want: []string{"d1", "d2", "d3", "d4", "d5"}},
		{name: "batch again, last e4", ids: "e1 e2 e3 e4 e5 e2 e3 e4", last: "e4", want: []string{}},
		{name: "batch again, last e5", ids: "e1 e2 e3 e4 e5 e2 e3 e4", last: "e5", want: []string{"d5", "d6", "d7"}},
		{name: "batch again, last e3", ids: "e1 e2 e3 e4 e5 e2 e3 e4", last: "e3", want: []string{"d7"}},
	}
	for i, tt := range tests {
		for j, n := range []*node{a, b} {
			t.Run(fmt.Sprintf("%s on hub %d", tt.name, j), func(t *testing.T) {
				channel := fmt.Sprintf("c%d-%d", i, j)
				for k, id := range strings.Fields(tt.ids) {
					[]*node{a, b}[k%2].mustPublish(t, channel, fmt.Sprintf("d%d", k), "id", id)
				}
				c := n.subscribe(t, "channel="+channel, tt.last)
				got := ssetest.Data(c.NextN(t, len(tt.want)))
				a.mustPublish(t, channel, "live")
				assert.Equal(t, tt.want, got, "replay after %q", tt.last)
				c.RequireNext(t, "live")
			})
		}
	}
}
