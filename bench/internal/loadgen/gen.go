package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one generator run. Scenario-specific fields say which scenarios
// read them.
type Config struct {
	Scenario string
	// Servers are the base URLs of the servers under test
	// ("http://127.0.0.1:8080"); publishes go to the first. Cluster needs two.
	Servers []string
	// PIDs are the servers' process ids, in the same order, for RSS and CPU
	// from /proc. Zero or missing skips those figures.
	PIDs []int
	// Conns is the number of reading streams.
	Conns int
	// Payload is the size of each event's data in bytes.
	Payload int
	// Duration is the length of each measured phase.
	Duration time.Duration
	// Rate is the publish rate of the fixed-rate phases, in events/s.
	Rate float64
	// Rates (fanout) are the rates of its fixed-rate phases, one phase
	// each; empty means Rate alone.
	Rates []float64
	// LatencyConns (fanout) is how many streams stay for the fixed-rate
	// phase; zero means Conns.
	LatencyConns int
	// SubsPerChannel (many-channels) is the number of streams per channel.
	SubsPerChannel int
	// Stalled (slow-consumer) is the number of streams that stop reading.
	Stalled int
	// StalledRcvBuf is the SO_RCVBUF of the stalled streams, in bytes.
	StalledRcvBuf int
	// StallDuration (slow-consumer) is the length of the phase with
	// stalled streams; zero means Duration. Make it longer than the
	// servers' write timeout to see them close the stalled streams.
	StallDuration time.Duration
	// CutWait is how long a released stalled stream is read to learn
	// whether the server had closed it.
	CutWait time.Duration
	// Publishers is the number of concurrent publishing connections.
	Publishers int
	// Batch (many-channels), above 1, adds a second flat-out phase that
	// publishes Batch events per POST /publish/batch. Zero means 1; at
	// most MaxBatch.
	Batch int
	// Window bounds the flat-out phases: publishing pauses while more than
	// Window events per counted stream are not yet delivered.
	Window int
	// Sources is how many source addresses (127.0.0.2 upwards) the streams
	// spread over.
	Sources int
	// DialConcurrency bounds connection attempts in flight.
	DialConcurrency int
	// Settle is the pause before idle memory is measured.
	Settle time.Duration
	// SyncTimeout bounds opening and subscribing all streams.
	SyncTimeout time.Duration
	// DrainTimeout bounds the wait for a phase's last deliveries. Zero
	// means the larger of 5s and Duration.
	DrainTimeout time.Duration
	// FinalDrain bounds the last wait, before the streams close, for
	// deliveries that phases stopped waiting for. Zero means 20s.
	FinalDrain time.Duration
	// CPUProfile, when set, is a file to which the first flat-out phase of
	// fanout or many-channels saves a CPU profile of the first server
	// (needs /debug/pprof).
	CPUProfile string
	// BatchCPUProfile is CPUProfile for many-channels' batched phase.
	BatchCPUProfile string
	// HeapProfile, when set, is a file to which fanout saves a heap profile
	// of the first server while its streams are idle (needs /debug/pprof).
	HeapProfile string
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Conns <= 0 {
		c.Conns = 200
	}
	if c.Payload <= 0 {
		c.Payload = 100
	}
	if c.Duration <= 0 {
		c.Duration = time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 200
	}
	if c.LatencyConns <= 0 || c.LatencyConns > c.Conns {
		c.LatencyConns = c.Conns
	}
	if c.SubsPerChannel <= 0 {
		c.SubsPerChannel = 2
	}
	if c.StalledRcvBuf <= 0 {
		c.StalledRcvBuf = 4096
	}
	if c.StallDuration <= 0 {
		c.StallDuration = c.Duration
	}
	if c.CutWait <= 0 {
		c.CutWait = 2 * time.Second
	}
	if c.Publishers <= 0 {
		c.Publishers = 4
	}
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.Window <= 0 {
		c.Window = 32
	}
	if c.Sources <= 0 {
		c.Sources = 8
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 512
	}
	if c.Settle <= 0 {
		c.Settle = time.Second
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = 60 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = max(5*time.Second, c.Duration)
	}
	if c.FinalDrain <= 0 {
		c.FinalDrain = 20 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

type server struct {
	base     string
	hostport string
	pid      int
}

// Gen owns the streams, the publishers and the counters of one run.
type Gen struct {
	cfg     Config
	servers []server
	client  *http.Client
	chNames []string
	nextSeq []atomic.Uint64
	subs    []int64 // counted streams per channel; changed only between phases

	conns []*subConn
	wg    sync.WaitGroup
	ctx   context.Context

	dialSem chan struct{}

	delivered, expected, published atomic.Int64
	givenUp                        atomic.Int64 // deliveries a phase stopped waiting for
	reads                          atomic.Int64 // reads that brought measured events
	dups, resets, badPayload       atomic.Int64
	disconnects, dialErrors        atomic.Int64
	connected, synced, reconnected atomic.Int64
	pubErrors                      atomic.Int64
	hist                           atomic.Pointer[histSet]
	perChannel                     bool // keep a histogram per channel too
	reconnectHist                  *Hist

	errMu   sync.Mutex
	pubErrs []string
	connErr error
}

func newGen(ctx context.Context, cfg Config, channels []string) (*Gen, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("loadgen: no server")
	}
	g := &Gen{
		cfg:           cfg,
		ctx:           ctx,
		chNames:       channels,
		nextSeq:       make([]atomic.Uint64, len(channels)),
		subs:          make([]int64, len(channels)),
		dialSem:       make(chan struct{}, cfg.DialConcurrency),
		reconnectHist: new(Hist),
	}
	g.hist.Store(g.newHistSet())
	for i, base := range cfg.Servers {
		u, err := url.Parse(base)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("loadgen: server URL %q: %v", base, err)
		}
		s := server{base: strings.TrimRight(base, "/"), hostport: u.Host}
		if i < len(cfg.PIDs) {
			s.pid = cfg.PIDs[i]
		}
		g.servers = append(g.servers, s)
	}
	g.client = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        4 * cfg.Publishers,
			MaxIdleConnsPerHost: 2 * cfg.Publishers,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		},
	}
	return g, nil
}

// open starts n streams, channel and server chosen per index, and waits
// until every one has its response headers.
func (g *Gen) open(n int, chanOf, serverOf func(i int) int, stall bool) ([]*subConn, error) {
	if n <= 0 {
		return nil, nil
	}
	base := len(g.conns)
	out := make([]*subConn, n)
	for i := range n {
		k := base + i
		c := &subConn{
			g:      g,
			ch:     chanOf(i),
			server: serverOf(i),
			src:    net.IPv4(127, 0, 0, byte(2+k%g.cfg.Sources)),
			stall:  stall,
			done:   make(chan struct{}),
		}
		if stall {
			c.rcvbuf = g.cfg.StalledRcvBuf
			c.unstall = make(chan struct{})
		}
		out[i] = c
		g.conns = append(g.conns, c)
		g.wg.Add(1)
		go c.loop(g.ctx)
	}
	g.cfg.Logf("opening %d streams", n)
	deadline := time.Now().Add(g.cfg.SyncTimeout)
	for {
		up := 0
		for _, c := range out {
			if c.connected.Load() {
				up++
			}
		}
		if up == n {
			return out, nil
		}
		if err := g.ctx.Err(); err != nil {
			return out, err
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("loadgen: %d of %d streams connected after %v (failed attempts %d, last: %v)",
				up, n, g.cfg.SyncTimeout, g.dialErrors.Load(), g.lastConnErr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *Gen) noteConnErr(err error) {
	g.errMu.Lock()
	g.connErr = err
	g.errMu.Unlock()
}

func (g *Gen) lastConnErr() error {
	g.errMu.Lock()
	defer g.errMu.Unlock()
	return g.connErr
}

// sync publishes sync events until every stream in cs has received one,
// which proves the server has subscribed it; then it marks the readers
// counted from the channels' next sequence numbers.
func (g *Gen) sync(cs []*subConn) error {
	deadline := time.Now().Add(g.cfg.SyncTimeout)
	for {
		var pending []int
		seen := map[int]bool{}
		missing := 0
		for _, c := range cs {
			if !c.synced.Load() {
				missing++
				if !seen[c.ch] {
					seen[c.ch] = true
					pending = append(pending, c.ch)
				}
			}
		}
		if missing == 0 {
			g.cfg.Logf("%d streams subscribed", len(cs))
			break
		}
		if err := g.ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadgen: %d of %d streams never received a sync event within %v", missing, len(cs), g.cfg.SyncTimeout)
		}
		g.parallel(len(pending), func(i int) {
			if err := g.publish(pending[i], kindSync, 0); err != nil {
				g.pubError(err)
			}
		})
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range cs {
		if c.stall {
			continue
		}
		c.startSeq.Store(g.nextSeq[c.ch].Load())
		c.everCounted.Store(true)
		c.counted.Store(true)
		g.subs[c.ch]++
	}
	return nil
}

// uncount stops counting cs and closes them.
func (g *Gen) uncount(cs []*subConn) {
	for _, c := range cs {
		if c.counted.Load() {
			c.endSeq.Store(g.nextSeq[c.ch].Load())
			c.ended.Store(true)
			c.counted.Store(false)
			g.subs[c.ch]--
		}
		c.close()
	}
}

// parallel runs f(0..n-1) on the publisher goroutines.
func (g *Gen) parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, g.cfg.Publishers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

func (g *Gen) pubError(err error) {
	g.pubErrors.Add(1)
	g.errMu.Lock()
	if len(g.pubErrs) < 5 {
		g.pubErrs = append(g.pubErrs, err.Error())
	}
	g.errMu.Unlock()
}

// publish sends one event to the first server.
func (g *Gen) publish(ch int, kind byte, seq uint64) error {
	body := g.appendEvent(make([]byte, 0, 64+len(g.chNames[ch])+g.cfg.Payload), ch, kind, seq)
	status, answer, err := g.post("/publish", body)
	if err != nil {
		return fmt.Errorf("loadgen: publish: %w", err)
	}
	if status != http.StatusAccepted {
		return fmt.Errorf("loadgen: publish: %s: %s", statusLine(status), answer)
	}
	return nil
}

// statusLine is a status as net/http's Response.Status writes it.
func statusLine(status int) string { return strconv.Itoa(status) + " " + http.StatusText(status) }

// appendEvent appends the publish body of one event of ch, stamped now.
func (g *Gen) appendEvent(body []byte, ch int, kind byte, seq uint64) []byte {
	body = append(body, `{"channel":"`...)
	body = append(body, g.chNames[ch]...)
	body = append(body, `","data":"`...)
	body = appendPayload(body, kind, seq, time.Now().UnixNano(), ch, g.cfg.Payload)
	return append(body, `"}`...)
}

// post sends a publish request to the first server and returns the answer's
// status and the start of its body.
func (g *Gen) post(path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(g.ctx, http.MethodPost, g.servers[0].base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode, bytes.TrimSpace(b), nil
}

// publishMeasured publishes the next measured event of ch, retrying a
// failed request with the same sequence number so that a publish error does
// not show up as a lost event.
func (g *Gen) publishMeasured(ch int) {
	seq := g.nextSeq[ch].Add(1) - 1
	g.expected.Add(g.subs[ch])
	var err error
	for range 3 {
		if err = g.publish(ch, kindMeasure, seq); err == nil || g.ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		g.pubError(err)
		g.expected.Add(-g.subs[ch])
		return
	}
	g.published.Add(1)
}

// MaxBatch is the most events POST /publish/batch takes.
const MaxBatch = 1000

// errPartial is a batch of which the server accepted some events: sending
// it again would duplicate those.
var errPartial = errors.New("loadgen: batch partly accepted")

// publishBatch sends one measured event per channel of chs, with the
// sequence numbers seqs, in one request to the first server.
func (g *Gen) publishBatch(chs []int, seqs []uint64) error {
	body := make([]byte, 0, len(chs)*(64+len(g.chNames[chs[0]])+g.cfg.Payload))
	body = append(body, '[')
	for i, ch := range chs {
		if i > 0 {
			body = append(body, ',')
		}
		body = g.appendEvent(body, ch, kindMeasure, seqs[i])
	}
	body = append(body, ']')
	status, answer, err := g.post("/publish/batch", body)
	if err != nil {
		return fmt.Errorf("loadgen: publish batch: %w", err)
	}
	switch status {
	case http.StatusAccepted:
		return nil
	case http.StatusMultiStatus:
		return fmt.Errorf("%w: %s: %s", errPartial, statusLine(status), answer)
	}
	return fmt.Errorf("loadgen: publish batch: %s: %s", statusLine(status), answer)
}

// publishMeasuredBatch is publishMeasured for the next measured event of
// each of chs, sent in one batch.
func (g *Gen) publishMeasuredBatch(chs []int) {
	seqs := make([]uint64, len(chs))
	var want int64
	for i, ch := range chs {
		seqs[i] = g.nextSeq[ch].Add(1) - 1
		want += g.subs[ch]
	}
	g.expected.Add(want)
	var err error
	for range 3 {
		if err = g.publishBatch(chs, seqs); err == nil || errors.Is(err, errPartial) || g.ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		g.pubError(err)
		g.expected.Add(-want)
		return
	}
	g.published.Add(int64(len(chs)))
}

// histSet is the latency histograms of one phase.
type histSet struct {
	all *Hist
	per []*Hist // nil unless Gen.perChannel
}

func (g *Gen) newHistSet() *histSet {
	hs := &histSet{all: new(Hist)}
	if g.perChannel {
		hs.per = make([]*Hist, len(g.chNames))
		for i := range hs.per {
			hs.per[i] = new(Hist)
		}
	}
	return hs
}

func (hs *histSet) record(ch int, ns int64) {
	hs.all.Record(ns)
	if hs.per != nil {
		hs.per[ch].Record(ns)
	}
}

// phase is what one measured stretch of publishing produced.
type phase struct {
	published int64
	delivered int64
	elapsed   time.Duration // from the first publish to the last delivery
	pubTime   time.Duration // from the first to the last publish
	hist      *Hist
	per       []*Hist // per channel, when the generator keeps them
	serverCPU time.Duration
	genCPU    time.Duration
	drained   bool
	missing   int64
	reads     int64
}

type phaseMark struct {
	t0                          time.Time
	published, delivered, reads int64
	serverCPU, genCPU           time.Duration
}

func (g *Gen) begin(what string) phaseMark {
	g.cfg.Logf("phase: %s", what)
	g.hist.Store(g.newHistSet())
	return phaseMark{
		t0:        time.Now(),
		published: g.published.Load(),
		delivered: g.delivered.Load(),
		reads:     g.reads.Load(),
		serverCPU: g.serverCPU(),
		genCPU:    selfCPU(),
	}
}

func (g *Gen) end(m phaseMark, pubEnd time.Time) *phase {
	drained := g.drain(g.cfg.DrainTimeout)
	p := &phase{
		published: g.published.Load() - m.published,
		delivered: g.delivered.Load() - m.delivered,
		elapsed:   time.Since(m.t0),
		pubTime:   pubEnd.Sub(m.t0),
		hist:      g.hist.Load().all,
		per:       g.hist.Load().per,
		serverCPU: g.serverCPU() - m.serverCPU,
		genCPU:    selfCPU() - m.genCPU,
		drained:   drained,
		missing:   g.expected.Load() - g.delivered.Load(),
		reads:     g.reads.Load() - m.reads,
	}
	if !drained {
		// The next phase must not wait for these; finalDrain gives them a
		// last chance before the trackers count what never came as lost.
		g.expected.Add(-p.missing)
		g.givenUp.Add(p.missing)
	}
	return p
}

// drain waits until every expected delivery has arrived.
func (g *Gen) drain(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for g.delivered.Load() < g.expected.Load() {
		if time.Now().After(deadline) || g.ctx.Err() != nil {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

func (g *Gen) counted() int64 {
	var n int64
	for _, s := range g.subs {
		n += s
	}
	return n
}

// flat publishes as fast as the servers deliver for d: each publisher waits
// while more than Window events per counted stream are outstanding, so the
// generator measures the delivery rate instead of queue overflow.
func (g *Gen) flat(d time.Duration, chans []int) *phase {
	m := g.begin(fmt.Sprintf("flat out for %v to %d streams", d, g.counted()))
	maxOut := int64(g.cfg.Window) * g.counted()
	deadline := m.t0.Add(d)
	var rr atomic.Uint64
	var wg sync.WaitGroup
	for range g.cfg.Publishers {
		wg.Go(func() {
			for g.waitRoom(maxOut, deadline) {
				g.publishMeasured(chans[int(rr.Add(1)-1)%len(chans)])
			}
		})
	}
	wg.Wait()
	return g.end(m, time.Now())
}

// waitRoom waits while more than limit deliveries are outstanding, and
// reports whether the phase goes on (its deadline and the run's context
// have not ended).
func (g *Gen) waitRoom(limit int64, deadline time.Time) bool {
	for g.expected.Load()-g.delivered.Load() > limit {
		if time.Now().After(deadline) || g.ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Microsecond)
	}
	return g.ctx.Err() == nil && !time.Now().After(deadline)
}

// flatBatch is flat with n events per request, on the next n channels of
// the round robin. A publisher waits until its whole batch fits in the
// window, so that a batch does not overshoot the window by its size.
func (g *Gen) flatBatch(d time.Duration, chans []int, n int) *phase {
	m := g.begin(fmt.Sprintf("flat out in batches of %d for %v to %d streams", n, d, g.counted()))
	maxOut := int64(g.cfg.Window) * g.counted()
	deadline := m.t0.Add(d)
	var rr atomic.Uint64
	var wg sync.WaitGroup
	for range g.cfg.Publishers {
		wg.Go(func() {
			chs := make([]int, n)
			for g.ctx.Err() == nil {
				first := int(rr.Add(uint64(n)) - uint64(n))
				var cost int64
				for i := range chs {
					chs[i] = chans[(first+i)%len(chans)]
					cost += g.subs[chs[i]]
				}
				// With a window smaller than one batch, wait for an
				// empty pipe rather than forever.
				if !g.waitRoom(max(0, maxOut-cost), deadline) {
					return
				}
				g.publishMeasuredBatch(chs)
			}
		})
	}
	wg.Wait()
	return g.end(m, time.Now())
}

// fixedRate publishes rate events/s for d, channels in turn, and returns
// the phase. during, if set, runs in its own goroutine once publishing has
// started, and the phase waits for it.
func (g *Gen) fixedRate(rate float64, d time.Duration, chans []int, during func()) *phase {
	m := g.begin(fmt.Sprintf("%.0f events/s for %v to %d streams", rate, d, g.counted()))
	total := int(rate * d.Seconds())
	deadline := m.t0.Add(d)
	jobs := make(chan int, 1024)
	var wg sync.WaitGroup
	for range g.cfg.Publishers {
		wg.Go(func() {
			for ch := range jobs {
				// A saturated server leaves a backlog; the phase still
				// ends on time. Sequence numbers are taken at send time,
				// so skipped jobs leave no gap.
				if time.Now().After(deadline) {
					continue
				}
				g.publishMeasured(ch)
			}
		})
	}
	var side sync.WaitGroup
	if during != nil {
		side.Go(during)
	}
	sent := 0
	for sent < total && g.ctx.Err() == nil && time.Now().Before(deadline) {
		due := min(int(time.Since(m.t0).Seconds()*rate)+1, total)
		for ; sent < due; sent++ {
			select {
			case jobs <- chans[sent%len(chans)]:
			case <-time.After(time.Until(deadline)):
				sent = total
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(jobs)
	wg.Wait()
	pubEnd := time.Now()
	side.Wait()
	return g.end(m, pubEnd)
}

func (g *Gen) serverCPU() time.Duration {
	var sum time.Duration
	for _, s := range g.servers {
		if s.pid > 0 {
			if d, err := procCPU(s.pid); err == nil {
				sum += d
			}
		}
	}
	return sum
}

// mem samples every server after a GC. It asks twice: the first GC may
// leave garbage that finalizers or the sweeper release only by the second.
func (g *Gen) mem() (serverMem, error) {
	var out serverMem
	for _, s := range g.servers {
		var ms MemStats
		var err error
		for range 2 {
			if ms, err = fetchMemStats(g.ctx, g.client, s.base); err != nil {
				return out, err
			}
		}
		out.HeapStack += ms.HeapInuse + ms.StackInuse
		out.Stack += ms.StackInuse
		out.Goroutines += ms.Goroutines
		if s.pid > 0 {
			rss, err := procRSS(s.pid)
			if err != nil {
				return out, err
			}
			out.RSS += rss
		}
	}
	return out, nil
}

// settleGoroutines waits until the servers' goroutine count stops falling,
// after streams were closed, so that their teardown does not run into the
// next phase.
func (g *Gen) settleGoroutines(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	prev := int64(-1)
	for time.Now().Before(deadline) && g.ctx.Err() == nil {
		m, err := g.mem()
		if err != nil {
			return
		}
		if m.Goroutines == prev {
			return
		}
		prev = m.Goroutines
		time.Sleep(200 * time.Millisecond)
	}
}

// finalDrain waits, up to timeout, for deliveries that a phase stopped
// waiting for, so that a slow machine does not turn late events into lost
// ones.
func (g *Gen) finalDrain(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for g.delivered.Load() < g.expected.Load()+g.givenUp.Load() {
		if time.Now().After(deadline) || g.ctx.Err() != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends every stream and waits for the readers.
func (g *Gen) stop() {
	for _, c := range g.conns {
		if c.unstall != nil {
			select {
			case <-c.unstall:
			default:
				close(c.unstall)
			}
		}
		c.close()
	}
	g.wg.Wait()
	g.client.CloseIdleConnections()
}

// totals are the tracker counts over every counted stream, taken after stop.
type totals struct {
	lost, lostSilent, dups int64
	resets                 int64
}

func (g *Gen) totals() totals {
	var t totals
	for _, c := range g.conns {
		if c.stall || !c.everCounted.Load() {
			continue
		}
		if !c.tr.started {
			// Counted but no measured event ever arrived.
			c.tr.start(c.startSeq.Load())
		}
		c.tr.finish(g.endOf(c))
		t.lost += int64(c.tr.lost)
		if c.resets == 0 {
			t.lostSilent += int64(c.tr.lost)
		}
		t.dups += int64(c.tr.dups)
		t.resets += int64(c.resets)
	}
	return t
}

func (g *Gen) endOf(c *subConn) uint64 {
	if c.ended.Load() {
		return c.endSeq.Load()
	}
	return g.nextSeq[c.ch].Load()
}
