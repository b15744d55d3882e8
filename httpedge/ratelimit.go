package httpedge

import (
	"container/list"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// PublishLimits bound how fast POST /publish is taken, with a token bucket
// per token subject (the "sub" claim) and one per client address. A
// publish over either is answered 429 with a Retry-After and a JSON reason,
// and counted in squall_limit_rejections_total. The zero value limits
// nothing.
type PublishLimits struct {
	// PerSubject is the rate of one token subject. Tokens without a
	// subject, and every publish while auth is off, are limited by address
	// only.
	PerSubject Rate
	// PerAddress is the rate of one client address (the peer, or the
	// forwarded address with Config.TrustProxy; IPv6 per /64). It is
	// checked before the token, so a flood of bad tokens is limited too.
	PerAddress Rate
	// MaxKeys bounds how many subjects, and separately how many addresses,
	// have a bucket at once: addresses are the attacker's to choose. Past
	// it the bucket used the longest ago is forgotten (a forgotten key
	// starts again with a full burst). Zero means DefaultRateKeys.
	MaxKeys int
}

// Rate is a token bucket: PerSecond tokens are added each second, up to
// Burst. PerSecond zero or negative means no limit.
type Rate struct {
	PerSecond float64
	// Burst is how many publishes may come at once. Zero means PerSecond
	// rounded up, at least 1.
	Burst int
}

// DefaultRateKeys is the default of PublishLimits.MaxKeys: at about 200
// bytes a bucket, 100,000 keys hold 20 MB.
const DefaultRateKeys = 100_000

// Label values of squall_limit_rejections_total for the publish rates.
const (
	limitPublishSubject = "publish_rate_subject"
	limitPublishAddress = "publish_rate_address"
)

var rateLimitNames = []string{limitPublishSubject, limitPublishAddress}

// keyedLimiter is a token bucket per key, with at most max keys. Its lock
// is taken once per publish.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu   sync.Mutex
	keys map[string]*list.Element
	lru  list.List // of *bucket, the most recently used first

	evicted atomic.Uint64
}

type bucket struct {
	key string
	lim *rate.Limiter
}

// newKeyedLimiter returns nil for a rate that limits nothing.
func newKeyedLimiter(r Rate, maxKeys int) *keyedLimiter {
	if r.PerSecond <= 0 {
		return nil
	}
	if maxKeys <= 0 {
		maxKeys = DefaultRateKeys
	}
	burst := r.Burst
	if burst <= 0 {
		burst = max(1, int(r.PerSecond+0.999999))
	}
	return &keyedLimiter{limit: rate.Limit(r.PerSecond), burst: burst, max: maxKeys, keys: map[string]*list.Element{}}
}

// take takes a token for key at now. Without one it takes nothing and
// returns how long until one is there.
func (l *keyedLimiter) take(key string, now time.Time) (time.Duration, bool) {
	return l.takeN(key, now, 1)
}

// takeN takes n tokens for key at now, at most the burst (more are never
// there). Without them it takes nothing and returns how long until they
// are there.
func (l *keyedLimiter) takeN(key string, now time.Time, n int) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.keys[key]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
	} else {
		l.makeRoom(now)
		b = &bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
		l.keys[key] = l.lru.PushFront(b)
	}
	res := b.lim.ReserveN(now, n)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// makeRoom makes room for one more key; l.mu is held. A bucket that has
// refilled is the same as none, so up to two of the least recently used
// are dropped when full, which keeps the map near the number of keys
// active within a burst's refill time. At the bound the least recently
// used goes whatever its state.
func (l *keyedLimiter) makeRoom(now time.Time) {
	for range 2 {
		back := l.lru.Back()
		if back == nil {
			return
		}
		b := back.Value.(*bucket)
		limiting := b.lim.TokensAt(now) < float64(l.burst)
		atBound := len(l.keys) >= l.max
		if limiting && !atBound {
			return
		}
		l.lru.Remove(back)
		delete(l.keys, b.key)
		if limiting {
			l.evicted.Add(1)
		}
	}
}

func (l *keyedLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// publishRates are the edge's publish limiters; either may be nil.
type publishRates struct {
	subject, address *keyedLimiter
}

func newPublishRates(p PublishLimits) publishRates {
	return publishRates{subject: newKeyedLimiter(p.PerSubject, p.MaxKeys), address: newKeyedLimiter(p.PerAddress, p.MaxKeys)}
}

// publishAddressAllowed takes a token of the client's address, or answers
// 429 and returns false.
func (s *Server) publishAddressAllowed(w http.ResponseWriter, r *http.Request) bool {
	l := s.rates.address
	if l == nil {
		return true
	}
	ip := clientIP(r, s.cfg.TrustProxy)
	return s.rateAllowed(w, l, ip, limitPublishAddress, "too many publishes from your address")
}

// publishSubjectAllowed takes a token of the token's subject, or answers
// 429 and returns false.
func (s *Server) publishSubjectAllowed(w http.ResponseWriter, c *Claims) bool {
	l := s.rates.subject
	if l == nil || c.subject() == "" {
		return true
	}
	return s.rateAllowed(w, l, c.subject(), limitPublishSubject, "too many publishes for your token's subject")
}

func (s *Server) rateAllowed(w http.ResponseWriter, l *keyedLimiter, key, limit, reason string) bool {
	return s.rateAllowedN(w, l, key, 1, limit, reason)
}

// rateAllowedN takes n tokens, n at most the limiter's burst.
func (s *Server) rateAllowedN(w http.ResponseWriter, l *keyedLimiter, key string, n int, limit, reason string) bool {
	wait, ok := l.takeN(key, time.Now(), n)
	if ok {
		return true
	}
	s.metrics.limitRejected(limit)
	// Retry-After is whole seconds: round up, so that a client that waits
	// as told finds a token.
	after := (wait + time.Second - 1).Truncate(time.Second)
	writeBusy(w, http.StatusTooManyRequests, after,
		fmt.Sprintf("%s: at most %g per second, bursts of %d", reason, float64(l.limit), l.burst))
	return false
}

// observeRates serves the limiters' sizes at /metrics:
//
//	squall_publish_rate_keys{key="subject|address"}           gauge: buckets held
//	squall_publish_rate_evictions_total{key="subject|address"} counter: buckets forgotten at the bound while still limiting
//
// Several Servers may share one Metrics: the series follow the first.
func (m *Metrics) observeRates(r publishRates) {
	if !m.ratesObserved.CompareAndSwap(false, true) {
		return
	}
	for _, kl := range []struct {
		name string
		l    *keyedLimiter
	}{{"subject", r.subject}, {"address", r.address}} {
		l := kl.l
		labels := prometheus.Labels{"key": kl.name}
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "squall_publish_rate_keys", ConstLabels: labels,
				Help: "Publish rate buckets held, by key: subject (token sub) or address."},
				func() float64 {
					if l == nil {
						return 0
					}
					return float64(l.len())
				}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "squall_publish_rate_evictions_total", ConstLabels: labels,
				Help: "Publish rate buckets forgotten at the bound (PublishLimits.MaxKeys) while still limiting: many keys at once, as from an attacker's addresses."},
				func() float64 {
					if l == nil {
						return 0
					}
					return float64(l.evicted.Load())
				}),
		)
	}
}
