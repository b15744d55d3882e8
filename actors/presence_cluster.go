package actors

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/squall-sse/squall/sse"
)

// Bounds of a disconnect, shared by the admin API and the cluster's admin
// messages: both refuse what is out of them, so a Redis writer cannot
// ask more of a node than an operator can.
const (
	// MaxDisconnectSubject bounds [DisconnectMatch.Subject], in bytes.
	MaxDisconnectSubject = 512
	// MaxDisconnectReason bounds [DisconnectNotice.Reason], in bytes.
	MaxDisconnectReason = 256
	// MaxDisconnectRetry bounds [DisconnectNotice.Retry].
	MaxDisconnectRetry = 24 * time.Hour
)

// Validate reports what is wrong with a match: neither or an invalid
// channel, an empty or too long subject.
func (m DisconnectMatch) Validate() error {
	if m.Subject == "" && m.Channel == "" {
		return errors.New(`give "subject" or "channel"`)
	}
	if len(m.Subject) > MaxDisconnectSubject || !utf8.ValidString(m.Subject) {
		return fmt.Errorf(`"subject" must be 1 to %d bytes of UTF-8`, MaxDisconnectSubject)
	}
	if m.Channel != "" {
		return sse.ValidChannel(m.Channel)
	}
	return nil
}

// Validate keeps the reason a line of text and the retry in range. The
// reason is JSON-encoded into the frame, so nothing in it could break the
// stream, but a client may show it.
func (n DisconnectNotice) Validate() error {
	if len(n.Reason) > MaxDisconnectReason {
		return fmt.Errorf(`"reason" over %d bytes`, MaxDisconnectReason)
	}
	for _, c := range n.Reason {
		if c == utf8.RuneError || unicode.IsControl(c) {
			return errors.New(`"reason" must be text without control characters`)
		}
	}
	if n.Retry < 0 || n.Retry > MaxDisconnectRetry {
		return fmt.Errorf(`"retry_ms" must be 0 to %d`, MaxDisconnectRetry.Milliseconds())
	}
	return nil
}

// Cluster-wide presence, as a cluster's admin (redisrelay.Admin) answers
// it: the sums of what every node reported for one interval.

// ClusterSnapshot says which data a cluster-wide answer comes from.
type ClusterSnapshot struct {
	// Interval is the nodes' reporting period: each node reports its
	// counts once per interval.
	Interval time.Duration
	// AsOf is when the interval the counts were reported in began; the
	// counts were taken within it, so they are at most twice Interval old
	// when the answer is given (plus the nodes' clock skew).
	AsOf time.Time
	// Nodes is how many nodes reported in that interval.
	Nodes int
}

// ClusterPresencePage is a page of the cluster's channels, each with the
// sum of its streams over the nodes.
type ClusterPresencePage struct {
	PresencePage
	ClusterSnapshot
}

// ClusterSubscribers is one channel's streams summed over the nodes.
type ClusterSubscribers struct {
	Subscribers int
	ClusterSnapshot
}

// ClusterDisconnect is what a cluster-wide disconnect achieved.
type ClusterDisconnect struct {
	// Here is how many streams this node closed.
	Here int
	// Disconnected is Here plus what the other nodes that acknowledged
	// said they closed.
	Disconnected int
	// Acknowledged counts the nodes that answered, this one included.
	Acknowledged int
	// Expected is how many nodes reported presence lately: the nodes that
	// should have answered. Fewer acknowledgements mean a node is down,
	// cut off from Redis, or too slow for the deadline.
	Expected int
}
