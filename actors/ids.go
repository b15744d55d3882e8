package actors

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Pos orders events within a channel. Its text form, "<unix ms>-<seq>", is the
// hub-assigned event id and is the same as a Redis stream entry id, so ids
// read alike in memory and in cluster mode, and a restarted channel keeps
// issuing ids greater than those it issued before.
type Pos struct{ Ms, Seq uint64 }

// ParsePos parses "<ms>-<seq>" as written by [Pos.String].
func ParsePos(s string) (Pos, bool) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return Pos{}, false
	}
	a, err1 := parseDigits(ms)
	b, err2 := parseDigits(seq)
	if !err1 || !err2 {
		return Pos{}, false
	}
	return Pos{a, b}, true
}

func parseDigits(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func (p Pos) String() string {
	var b [41]byte
	out := strconv.AppendUint(b[:0], p.Ms, 10)
	out = append(out, '-')
	out = strconv.AppendUint(out, p.Seq, 10)
	return string(out)
}

// Less reports whether p comes before q.
func (p Pos) Less(q Pos) bool {
	return p.Ms < q.Ms || (p.Ms == q.Ms && p.Seq < q.Seq)
}

// IsZero reports whether p is unset.
func (p Pos) IsZero() bool { return p == Pos{} }

// next returns the position after last at time now: the wall-clock millisecond
// when it has moved on, else the next sequence in last's millisecond, so
// positions never repeat or go back even if the clock does.
func next(last Pos, now time.Time) Pos {
	ms := uint64(now.UnixMilli())
	if ms > last.Ms {
		return Pos{Ms: ms}
	}
	return Pos{Ms: last.Ms, Seq: last.Seq + 1}
}

// A stream on several channels cannot resume from one channel's id, so it is
// sent composite ids, "chan=id&chan2=id2" in URL query encoding, that carry the
// last id of each of its channels. A browser sends the whole string back as
// Last-Event-ID and every channel resumes from its own point.

func compositeID(dst []byte, escNames, escIDs []string) []byte {
	first := true
	for i := range escNames {
		if escIDs[i] == "" {
			continue
		}
		if !first {
			dst = append(dst, '&')
		}
		first = false
		dst = append(dst, escNames[i]...)
		dst = append(dst, '=')
		dst = append(dst, escIDs[i]...)
	}
	return dst
}

// resumePoints maps each channel of a stream to the id it resumes after.
// A composite id names its channels; a plain id applies to every channel (a
// stream that had one channel and now asks for more). A channel a composite
// id does not name has no resume point: it starts live.
func resumePoints(lastID string, channels []string) map[string]string {
	if lastID == "" {
		return nil
	}
	points := make(map[string]string, len(channels))
	if len(channels) > 1 && strings.Contains(lastID, "=") {
		if q, err := url.ParseQuery(lastID); err == nil && namesOnly(q, channels) {
			for ch, ids := range q {
				points[ch] = ids[len(ids)-1]
			}
			return points
		}
	}
	for _, ch := range channels {
		points[ch] = lastID
	}
	return points
}

func namesOnly(q url.Values, channels []string) bool {
	if len(q) == 0 {
		return false
	}
	for k := range q {
		found := false
		for _, ch := range channels {
			if ch == k {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
