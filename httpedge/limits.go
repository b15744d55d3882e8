package httpedge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/squall-sse/squall/actors"
)

// Defaults of the stream limits.
const (
	// DefaultMaxStreams bounds the streams one hub serves at once. At about
	// 30 KB per idle stream this is 1.5 GB, and it stays under common file
	// descriptor limits.
	DefaultMaxStreams = 50_000
	// limitRetryAfter is the Retry-After of a 429 or 503 for a limit:
	// streams end in their own time, so there is no exact answer.
	limitRetryAfter = 5 * time.Second
)

// Limit names, the label values of squall_limit_rejections_total.
const (
	limitStreams      = "streams"
	limitStreamsPerIP = "streams_per_ip"
	limitChannels     = "channels"
	limitBody         = "body"
)

var limitNames = []string{limitStreams, limitStreamsPerIP, limitChannels, limitBody}

var errTooManyChannels = errors.New("too many channels")

// clientIP names the client a per-IP limit counts against: the peer
// address, or, behind a trusted proxy, the last X-Forwarded-For hop (the
// address the proxy itself saw; the hops before it are whatever the client
// claimed). IPv6 clients count per /64, the block one host usually gets.
func clientIP(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if hops := r.Header.Values("X-Forwarded-For"); len(hops) > 0 {
			last := hops[len(hops)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
				return ipKey(ip)
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ipKey(ip)
	}
	return host
}

func ipKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// slot is one stream the edge serves, from its admission to its handler's
// return. Drain may ask it to close before its stream exists; attach then
// closes the stream as soon as it is opened.
type slot struct {
	ip string

	mu      sync.Mutex
	stream  *actors.Stream
	closing bool
	retry   time.Duration
}

func (s *slot) attach(st *actors.Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream = st
	if s.closing {
		st.CloseWith(actors.Shutdown, s.retry)
	}
}

func (s *slot) close(retry time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.closing, s.retry = true, retry
	if s.stream != nil {
		s.stream.CloseWith(actors.Shutdown, retry)
	}
}

// streams admits streams against the limits and keeps the set Drain
// closes. Its lock is taken twice per stream (open and close), never per
// event.
type streams struct {
	max, maxPerIP int

	mu       sync.Mutex
	draining bool
	open     map[*slot]struct{}
	perIP    map[string]int
	ended    chan struct{} // closed once draining with no stream open
	isEnded  bool
}

func newStreams(limit, perIP int) *streams {
	return &streams{max: limit, maxPerIP: perIP, open: map[*slot]struct{}{}, perIP: map[string]int{}, ended: make(chan struct{})}
}

// endIfIdle closes ended once draining leaves no stream; ss.mu is held.
func (ss *streams) endIfIdle() {
	if ss.draining && len(ss.open) == 0 && !ss.isEnded {
		ss.isEnded = true
		close(ss.ended)
	}
}

// admit takes a slot for a new stream from ip, or answers the request
// (503 while draining or at the global limit, 429 at the per-IP limit) and
// returns nil.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, ip string) *slot {
	ss := s.streams
	ss.mu.Lock()
	var status int
	var limit, reason string
	after := limitRetryAfter
	switch {
	case ss.draining:
		status, after, reason = http.StatusServiceUnavailable, time.Second, "draining: reconnect to another node"
	case ss.max > 0 && len(ss.open) >= ss.max:
		status, limit = http.StatusServiceUnavailable, limitStreams
		reason = fmt.Sprintf("stream limit reached: this hub serves at most %d streams", ss.max)
	case ss.maxPerIP > 0 && ss.perIP[ip] >= ss.maxPerIP:
		status, limit = http.StatusTooManyRequests, limitStreamsPerIP
		reason = fmt.Sprintf("too many streams from your address: at most %d", ss.maxPerIP)
	default:
		sl := &slot{ip: ip}
		ss.open[sl] = struct{}{}
		ss.perIP[ip]++
		ss.mu.Unlock()
		return sl
	}
	ss.mu.Unlock()
	if limit != "" {
		s.metrics.limitRejected(limit)
		s.cfg.Logger.Debug("stream refused", "remote", r.RemoteAddr, "ip", ip, "limit", limit)
	}
	writeBusy(w, status, after, reason)
	return nil
}

func (ss *streams) release(sl *slot) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.open, sl)
	if n := ss.perIP[sl.ip] - 1; n > 0 {
		ss.perIP[sl.ip] = n
	} else {
		delete(ss.perIP, sl.ip)
	}
	ss.endIfIdle()
}

// startDraining refuses new streams from now on and returns the open ones
// and a channel closed once all of them have ended.
func (ss *streams) startDraining() ([]*slot, <-chan struct{}) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.draining = true
	open := make([]*slot, 0, len(ss.open))
	for sl := range ss.open {
		open = append(open, sl)
	}
	ss.endIfIdle()
	return open, ss.ended
}

// Drain batches: at least drainBatchMin streams per batch, at most
// drainBatches batches.
const (
	drainBatches  = 10
	drainBatchMin = 100
)

// Drain closes every stream this server opened and waits for their
// handlers to return, or for ctx to end.
//
// It starts with [Server.StartDraining]: /readyz turns 503 and new streams
// are refused. Then each open stream is sent a "retry:" hint of retry plus
// up to as much again of random jitter, and closed after what is already
// queued for it is written. Streams are closed in up to 10 batches of at
// least 100, spread evenly over spread, so that their clients come back to
// the other nodes as a ramp rather than a wall; with spread zero they all
// close at once. Publishes keep being accepted meanwhile: stop the
// http.Server afterwards to let in-flight publishes finish, then shut the
// hub down.
func (s *Server) Drain(ctx context.Context, spread, retry time.Duration) error {
	s.StartDraining()
	open, ended := s.streams.startDraining()
	batches := min(drainBatches, (len(open)+drainBatchMin-1)/drainBatchMin)
	if spread <= 0 {
		batches = 1
	}
	var tick *time.Ticker
	if batches > 1 {
		tick = time.NewTicker(spread / time.Duration(batches))
		defer tick.Stop()
	}
	for b := range batches {
		if b > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		lo, hi := b*len(open)/batches, (b+1)*len(open)/batches
		for _, sl := range open[lo:hi] {
			hint := retry
			if retry > 0 {
				hint += rand.N(retry + 1)
			}
			sl.close(hint)
		}
	}
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
