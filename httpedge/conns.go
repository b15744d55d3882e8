package httpedge

import (
	"container/list"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnLimits bounds the connections a [ConnLimiter] holds open.
type ConnLimits struct {
	// Max is how many connections may be open at once, all peers. Keep it
	// below the process's file descriptor limit, with room for Redis, logs
	// and the listener, so that accept never fails with EMFILE. Zero or
	// negative means no limit.
	Max int
	// MaxPerPeer is how many connections one peer address may hold at once
	// (IPv6 per /64), counted at accept time, before any header is read.
	// Behind a proxy the peer is the proxy: leave it at zero there and
	// limit per client at the proxy. Zero or negative means no limit.
	MaxPerPeer int
}

// ConnLimiter is a net.Listener that enforces [ConnLimits] at accept time.
// A connection over a peer's limit is closed at once. At the global limit
// the connection idle the longest (a keep-alive between requests, or one
// that has not finished its first request's headers) is closed to make
// room, as nginx does with its keep-alive connections; only when every
// connection is serving a request is the new one closed instead. Closing
// rather than leaving it in the kernel's backlog keeps the listener
// answering: a health check behind a flood still gets in.
//
// Give its ConnState method to http.Server.ConnState, or it cannot tell
// idle connections from busy ones and closes new ones at the limit.
//
// golang.org/x/net/netutil.LimitListener is not enough here: it blocks
// Accept at the limit, so connections held by one peer lock everyone out.
type ConnLimiter struct {
	net.Listener
	limits ConnLimits

	mu      sync.Mutex
	open    int
	perPeer map[string]int
	idle    list.List // of *limitedConn not serving a request, longest idle first

	refusedMax, refusedPeer, shed atomic.Uint64
}

// NewConnLimiter wraps ln.
func NewConnLimiter(ln net.Listener, limits ConnLimits) *ConnLimiter {
	return &ConnLimiter{Listener: ln, limits: limits, perPeer: map[string]int{}}
}

// limitedConn is one admitted connection; its slot is released once, on
// its first Close.
type limitedConn struct {
	net.Conn
	l        *ConnLimiter
	peer     string
	idle     *list.Element // nil while serving a request; guarded by l.mu
	released bool          // guarded by l.mu
}

// Accept returns the next connection within the limits, closing the ones
// over them.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
		_ = c.Close()
	}
}

func (l *ConnLimiter) admit(c net.Conn) *limitedConn {
	peer := peerKey(c.RemoteAddr())
	var victim *limitedConn
	l.mu.Lock()
	if l.limits.MaxPerPeer > 0 && l.perPeer[peer] >= l.limits.MaxPerPeer {
		l.mu.Unlock()
		l.refusedPeer.Add(1)
		return nil
	}
	if l.limits.Max > 0 && l.open >= l.limits.Max {
		front := l.idle.Front()
		if front == nil {
			l.mu.Unlock()
			l.refusedMax.Add(1)
			return nil
		}
		victim = front.Value.(*limitedConn)
		l.releaseLocked(victim)
	}
	lc := &limitedConn{Conn: c, l: l, peer: peer}
	l.open++
	l.perPeer[peer]++
	lc.idle = l.idle.PushBack(lc)
	l.mu.Unlock()
	if victim != nil {
		// Its server goroutine sees the read fail and ends; its Close
		// then finds the slot already released.
		_ = victim.Conn.Close()
		l.shed.Add(1)
	}
	return lc
}

// releaseLocked frees lc's slot; l.mu is held.
func (l *ConnLimiter) releaseLocked(lc *limitedConn) {
	if lc.released {
		return
	}
	lc.released = true
	if lc.idle != nil {
		l.idle.Remove(lc.idle)
		lc.idle = nil
	}
	l.open--
	if n := l.perPeer[lc.peer] - 1; n > 0 {
		l.perPeer[lc.peer] = n
	} else {
		delete(l.perPeer, lc.peer)
	}
}

func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// ConnState tracks which connections are idle; set it as
// http.Server.ConnState (call any other hook from a wrapper).
func (l *ConnLimiter) ConnState(c net.Conn, state http.ConnState) {
	// Over TLS (http.Server.ServeTLS on the limiter) the server sees the
	// TLS connection around the one the limiter admitted.
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.released {
		return
	}
	switch state {
	case http.StateNew, http.StateIdle:
		if lc.idle != nil {
			l.idle.MoveToBack(lc.idle)
		} else {
			lc.idle = l.idle.PushBack(lc)
		}
	case http.StateActive, http.StateHijacked:
		if lc.idle != nil {
			l.idle.Remove(lc.idle)
			lc.idle = nil
		}
	case http.StateClosed:
		l.releaseLocked(lc)
	}
}

// ConnStats is a snapshot of a [ConnLimiter].
type ConnStats struct {
	Open, Idle                        int    // connections open now; of them, not serving a request
	RefusedMax, RefusedPeer, ShedIdle uint64 // closed at accept: at the global limit, over a peer's limit; idle ones closed to make room
}

// Stats returns the limiter's counts.
func (l *ConnLimiter) Stats() ConnStats {
	l.mu.Lock()
	open, idle := l.open, l.idle.Len()
	l.mu.Unlock()
	return ConnStats{Open: open, Idle: idle, RefusedMax: l.refusedMax.Load(),
		RefusedPeer: l.refusedPeer.Load(), ShedIdle: l.shed.Load()}
}

// Limits returns the limits l enforces.
func (l *ConnLimiter) Limits() ConnLimits { return l.limits }

func peerKey(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ipKey(ip)
		}
	}
	return a.String()
}

// ObserveConns serves l's counts at /metrics:
//
//	squall_connections_open                  gauge: client connections open now
//	squall_connections_max                   gauge: the limit on them (0: none)
//	squall_connections_refused_total{limit}  counter: closed at accept: max, per_peer
//	squall_connections_shed_total            counter: idle connections closed to make room at the limit
func (m *Metrics) ObserveConns(l *ConnLimiter) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "squall_connections_open", Help: "Client connections open now."},
			func() float64 { return float64(l.Stats().Open) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "squall_connections_max", Help: "The limit on open client connections; 0 means none."},
			func() float64 { return float64(max(0, l.limits.Max)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "squall_connections_refused_total",
			Help: "Connections closed at accept, by limit.", ConstLabels: prometheus.Labels{"limit": "max"}},
			func() float64 { return float64(l.refusedMax.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "squall_connections_refused_total",
			Help: "Connections closed at accept, by limit.", ConstLabels: prometheus.Labels{"limit": "per_peer"}},
			func() float64 { return float64(l.refusedPeer.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "squall_connections_shed_total",
			Help: "Idle connections closed to make room at the connection limit."},
			func() float64 { return float64(l.shed.Load()) }),
	)
}
