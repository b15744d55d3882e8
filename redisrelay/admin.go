package redisrelay

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/actors"
)

// Admin makes the admin API cluster-wide: presence summed over the nodes
// and disconnects carried to every node. It works beside a [Relay] and
// uses its clients, with a subscription of its own.
//
// Presence. Time is cut into intervals of AdminConfig.Interval, numbered
// from the Unix epoch. Once in each interval, around its middle, every
// node adds its non-zero channel counts into that interval's keys (one
// script per 1000 channels, all sent in one pipeline):
//
//	PREFIX!presence{E}:counts   hash  channel -> streams summed over the nodes
//	PREFIX!presence{E}:names    zset  the channels with streams, score 0 (read in name order)
//	PREFIX!presence{E}:nodes    set   the nodes that reported
//	PREFIX!presence{E}:written  set   node/chunk markers: a retried script adds nothing twice
//
// They expire after 3 intervals. A query reads the last finished interval,
// E-1, which every live node has written: one ZRANGEBYLEX for a page and
// one HMGET of its counts, however many nodes or channels there are. A
// node that stops writing drops out when its last interval stops being the
// one read: within 2 intervals. The {E} hash tag keeps one interval's keys
// in one slot of a Redis Cluster (the script needs that), and spreads the
// intervals over the shards. The "!" after PREFIX keeps them apart from
// the relay's keys and channels (PREFIX:...), since "!" is not a channel
// character.
//
// Disconnects. The node that takes the request closes its own streams,
// publishes the request on PREFIX!admin and waits (AdminConfig.AckTimeout)
// for the acknowledgements that the other nodes publish on
// PREFIX!admin!ORIGIN. The nodes expected are those that reported
// presence in the last two intervals. Classic PUBLISH reaches every node
// of a Redis Cluster, with sharded pub/sub on too. The relay's pattern
// (PREFIX:*) does not match these channels, nor does any per-channel
// subscription.
type Admin struct {
	r    *Relay
	hub  AdminHub
	cfg  AdminConfig
	node string // random, hex: in keys, messages and channel names

	keyHead                       string // PREFIX!presence{
	counts, names, nodes, written string // the keys' kinds
	bcast, inbox                  string // PREFIX!admin, PREFIX!admin!NODE
	script                        *redis.Script

	mu      sync.Mutex
	waiting map[string]chan adminAck // by request id
	started bool

	work chan *adminRequest // to the worker: the receive loop never blocks

	malformed atomic.Uint64
	dropped   atomic.Uint64 // requests refused because the worker was behind
	failures  atomic.Uint64 // presence writes that failed
	writes    atomic.Uint64 // presence writes that succeeded
	up        atomic.Bool   // the admin subscription is confirmed

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ps     *redis.PubSub
	psMu   sync.Mutex
}

// AdminHub is what Admin needs of the node's hub: *actors.Hub is one.
type AdminHub interface {
	Presence(ctx context.Context, q actors.PresenceQuery) (actors.PresencePage, error)
	Disconnect(ctx context.Context, m actors.DisconnectMatch, n actors.DisconnectNotice) (int, error)
}

// AdminConfig configures an [Admin].
type AdminConfig struct {
	// Interval is how often each node reports its counts: answers are at
	// most 2 intervals old and a dead node drops out within 2. Zero means
	// 5s; at least 10ms.
	Interval time.Duration
	// AckTimeout is how long a disconnect waits for the other nodes'
	// acknowledgements. Zero means 2s.
	AckTimeout time.Duration
	// Logger gets failed presence reports and failed disconnects asked
	// by other nodes, at Warn. Nil: the relay's logger.
	Logger *slog.Logger
}

// Bounds of the admin messages read from Redis.
const (
	// MaxAdminMessage bounds an admin message's payload: the largest valid
	// request (a subject of 512 bytes, all escaped) fits.
	MaxAdminMessage = 8 << 10
	// presenceChunk is how many channels one presence script carries.
	presenceChunk = 1000
	// adminQueue is how many requests from other nodes may wait for the
	// worker; more are dropped and counted (an operator sends a few a
	// second at most: the API is rate-limited).
	adminQueue = 64
)

// ErrAdminInterval is NewAdmin's error for an interval under 10ms.
var ErrAdminInterval = errors.New("redisrelay: AdminConfig.Interval under 10ms")

// NewAdmin returns an Admin for relay and hub; Start begins its work.
func NewAdmin(relay *Relay, hub AdminHub, cfg AdminConfig) (*Admin, error) {
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Interval < 10*time.Millisecond {
		return nil, ErrAdminInterval
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = relay.cfg.Logger
	}
	var id [16]byte
	_, _ = crand.Read(id[:])
	a := &Admin{r: relay, hub: hub, cfg: cfg, node: hex.EncodeToString(id[:]),
		keyHead: relay.cfg.Prefix + "!presence{",
		counts:  "}:counts", names: "}:names", nodes: "}:nodes", written: "}:written",
		bcast: relay.cfg.Prefix + "!admin", script: presenceScript,
		waiting: map[string]chan adminAck{}, work: make(chan *adminRequest, adminQueue)}
	a.inbox = a.bcast + "!" + a.node
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

// presenceScript adds one node's chunk of counts to an interval's keys,
// once: KEYS counts, names, written, nodes; ARGV ttl (ms), node, marker,
// then channel and count pairs.
var presenceScript = redis.NewScript(`
if redis.call('SADD', KEYS[3], ARGV[3]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[1])
if #ARGV > 3 then
  local z = {}
  for i = 4, #ARGV, 2 do
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i+1])
    z[#z+1] = 0
    z[#z+1] = ARGV[i]
  end
  redis.call('ZADD', KEYS[2], unpack(z))
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 1
`)

// Node is this node's id in the admin keys and messages.
func (a *Admin) Node() string { return a.node }

// Interval is the reporting period.
func (a *Admin) Interval() time.Duration { return a.cfg.Interval }

// Malformed counts the admin messages read from Redis and refused.
func (a *Admin) Malformed() uint64 { return a.malformed.Load() }

// Subscribed reports whether Redis has confirmed the admin subscription.
func (a *Admin) Subscribed() bool { return a.up.Load() }

// Observe registers the admin's series on reg:
//
//	squall_admin_messages_malformed_total  admin messages from Redis refused (too big, not strict JSON, out of bounds)
//	squall_admin_requests_dropped_total    disconnects from other nodes dropped because this node was behind
//	squall_presence_writes_total{result}   presence reports, ok or error
func (a *Admin) Observe(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "squall_admin_messages_malformed_total",
			Help: "Admin messages read from Redis and refused: too big, not strict JSON, or out of bounds."},
			func() float64 { return float64(a.malformed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "squall_admin_requests_dropped_total",
			Help: "Disconnect requests from other nodes dropped because this node's queue was full."},
			func() float64 { return float64(a.dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "squall_presence_writes_total",
			Help: "Presence reports written to Redis.", ConstLabels: prometheus.Labels{"result": "ok"}},
			func() float64 { return float64(a.writes.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "squall_presence_writes_total",
			Help: "Presence reports written to Redis.", ConstLabels: prometheus.Labels{"result": "error"}},
			func() float64 { return float64(a.failures.Load()) }),
	)
}

// Start begins the presence reports and the admin subscription. It panics
// when called twice.
func (a *Admin) Start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		panic("redisrelay: Admin.Start called twice")
	}
	a.started = true
	a.wg.Add(3)
	go a.report()
	go a.receive()
	go a.worker()
}

// Close stops the reports and the subscription; call it before the
// relay's Shutdown, which closes the clients. The node's last report
// drops out of the answers within 2 intervals. It is idempotent.
func (a *Admin) Close() error {
	a.cancel()
	a.psMu.Lock()
	if a.ps != nil {
		_ = a.ps.Close()
	}
	a.psMu.Unlock()
	a.wg.Wait()
	return nil
}

// key is the key of a kind for an interval; concatenated, since the
// prefix may hold any byte.
func (a *Admin) key(kind string, interval int64) string {
	return a.keyHead + strconv.FormatInt(interval, 10) + kind
}

// intervalOf numbers the interval t falls in.
func (a *Admin) intervalOf(t time.Time) int64 { return t.UnixMilli() / a.cfg.Interval.Milliseconds() }

func (a *Admin) startOf(e int64) time.Time {
	return time.UnixMilli(e * a.cfg.Interval.Milliseconds())
}

// report writes the node's counts once per interval, around its middle
// (plus up to a tenth of jitter), so that clocks a quarter interval apart
// still write each interval before anyone reads it.
func (a *Admin) report() {
	defer a.wg.Done()
	iv := a.cfg.Interval
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		now := time.Now()
		e := a.intervalOf(now)
		if now.Sub(a.startOf(e)) > 3*iv/4 {
			e++ // too late for this one: the next
		}
		at := a.startOf(e).Add(iv/2 + rand.N(iv/10+1))
		if at.Before(now) {
			at = now
		}
		t.Reset(time.Until(at))
		select {
		case <-t.C:
		case <-a.ctx.Done():
			return
		}
		if err := a.write(e); err != nil {
			if errors.Is(err, actors.ErrClosed) {
				return // the hub has stopped: nothing more to report
			}
			a.failures.Add(1)
			if a.ctx.Err() == nil {
				a.cfg.Logger.Warn("redisrelay: presence report failed", "err", err)
			}
			continue
		}
		a.writes.Add(1)
	}
}

// write reports the node's non-zero counts for interval e, in one
// pipeline of one script per presenceChunk channels.
func (a *Admin) write(e int64) error {
	ctx, cancel := context.WithTimeout(a.ctx, a.cfg.Interval/2)
	defer cancel()
	var counts []any
	q := actors.PresenceQuery{Limit: actors.MaxPresenceLimit}
	for {
		page, err := a.hub.Presence(ctx, q)
		if err != nil {
			return err
		}
		for _, c := range page.Channels {
			if c.Subscribers > 0 {
				counts = append(counts, c.Channel, c.Subscribers)
			}
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	keys := []string{a.key(a.counts, e), a.key(a.names, e), a.key(a.written, e), a.key(a.nodes, e)}
	ttl := (3 * a.cfg.Interval).Milliseconds()
	run := func(eval func(redis.Pipeliner, []any) *redis.Cmd) error {
		pipe := a.r.client.Pipeline()
		for i := 0; i == 0 || i*2*presenceChunk < len(counts); i++ {
			chunk := counts[min(i*2*presenceChunk, len(counts)):min((i+1)*2*presenceChunk, len(counts))]
			args := append([]any{ttl, a.node, a.node + "/" + strconv.Itoa(i)}, chunk...)
			eval(pipe, args)
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run(func(p redis.Pipeliner, args []any) *redis.Cmd { return a.script.EvalSha(ctx, p, keys, args...) })
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// The markers make the second run add only what the first did not.
		err = run(func(p redis.Pipeliner, args []any) *redis.Cmd { return a.script.Eval(ctx, p, keys, args...) })
	}
	return err
}

// snapshot is the interval queries read: the last finished one.
func (a *Admin) snapshot() (int64, actors.ClusterSnapshot) {
	e := a.intervalOf(time.Now()) - 1
	return e, actors.ClusterSnapshot{Interval: a.cfg.Interval, AsOf: a.startOf(e)}
}

// Presence returns a page of the cluster's channels in name order, with
// their streams summed over the nodes that reported in the last finished
// interval. It panics on a Limit out of range, as [actors.Hub.Presence].
func (a *Admin) Presence(ctx context.Context, q actors.PresenceQuery) (actors.ClusterPresencePage, error) {
	if q.Limit < 1 || q.Limit > actors.MaxPresenceLimit {
		panic(fmt.Sprintf("redisrelay: PresenceQuery.Limit %d out of 1..%d", q.Limit, actors.MaxPresenceLimit))
	}
	e, snap := a.snapshot()
	lo, hi := "-", "+"
	if q.Prefix != "" {
		// No channel has a byte 0xff, so every name with the prefix sorts
		// before prefix+"\xff".
		lo, hi = "["+q.Prefix, "("+q.Prefix+"\xff"
	}
	if q.After != "" && q.After >= q.Prefix {
		lo = "(" + q.After
	}
	pipe := a.r.client.Pipeline()
	names := pipe.ZRangeByLex(ctx, a.key(a.names, e), &redis.ZRangeBy{Min: lo, Max: hi, Count: int64(q.Limit) + 1})
	nodes := pipe.SCard(ctx, a.key(a.nodes, e))
	if _, err := pipe.Exec(ctx); err != nil {
		return actors.ClusterPresencePage{}, err
	}
	page := actors.ClusterPresencePage{ClusterSnapshot: snap}
	page.Nodes = int(nodes.Val())
	got := names.Val()
	if len(got) > q.Limit {
		got = got[:q.Limit]
		page.Next = got[len(got)-1]
	}
	page.Channels = make([]actors.ChannelPresence, len(got))
	if len(got) == 0 {
		return page, nil
	}
	vals, err := a.r.client.HMGet(ctx, a.key(a.counts, e), got...).Result()
	if err != nil {
		return actors.ClusterPresencePage{}, err
	}
	for i, name := range got {
		page.Channels[i] = actors.ChannelPresence{Channel: name, Subscribers: countOf(vals[i])}
	}
	return page, nil
}

func countOf(v any) int {
	s, _ := v.(string)
	n, _ := strconv.Atoi(s)
	return max(n, 0)
}

// Subscribers returns channel's streams summed over the nodes that
// reported in the last finished interval.
func (a *Admin) Subscribers(ctx context.Context, channel string) (actors.ClusterSubscribers, error) {
	e, snap := a.snapshot()
	pipe := a.r.client.Pipeline()
	n := pipe.HGet(ctx, a.key(a.counts, e), channel)
	nodes := pipe.SCard(ctx, a.key(a.nodes, e))
	_, _ = pipe.Exec(ctx)
	if err := cmp.Or(nodes.Err(), n.Err()); err != nil && !errors.Is(err, redis.Nil) {
		return actors.ClusterSubscribers{}, err
	}
	snap.Nodes = int(nodes.Val())
	return actors.ClusterSubscribers{Subscribers: countOf(n.Val()), ClusterSnapshot: snap}, nil
}

// adminRequest is a disconnect as it travels on PREFIX!admin. Every field
// is checked on receipt as strictly as the HTTP API checks its body.
type adminRequest struct {
	ID      string  `json:"id"`
	From    string  `json:"from"`
	Subject *string `json:"subject,omitempty"`
	Channel *string `json:"channel,omitempty"`
	Reason  string  `json:"reason"`
	RetryMS int64   `json:"retry_ms"`
}

// adminAck answers a request on its origin's inbox.
type adminAck struct {
	ID           string `json:"id"`
	Node         string `json:"node"`
	Disconnected int    `json:"disconnected"`
}

// Disconnect closes the matching streams here and asks every other node
// to, then waits for their acknowledgements until all the nodes expected
// have answered, AckTimeout passes or ctx ends. It fails only when the
// local disconnect does or the request cannot be published.
func (a *Admin) Disconnect(ctx context.Context, m actors.DisconnectMatch, n actors.DisconnectNotice) (actors.ClusterDisconnect, error) {
	var res actors.ClusterDisconnect
	if err := m.Validate(); err != nil {
		return res, err
	}
	if err := n.Validate(); err != nil {
		return res, err
	}
	var id [16]byte
	_, _ = crand.Read(id[:])
	req := adminRequest{ID: hex.EncodeToString(id[:]), From: a.node, Reason: n.Reason, RetryMS: n.Retry.Milliseconds()}
	if m.Subject != "" {
		req.Subject = &m.Subject
	}
	if m.Channel != "" {
		req.Channel = &m.Channel
	}
	payload, err := jsonv2.Marshal(req)
	if err != nil {
		return res, err
	}
	acks := make(chan adminAck, adminQueue)
	a.mu.Lock()
	a.waiting[req.ID] = acks
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.waiting, req.ID)
		a.mu.Unlock()
	}()

	e := a.intervalOf(time.Now())
	pipe := a.r.client.Pipeline()
	prev := pipe.SCard(ctx, a.key(a.nodes, e-1))
	pipe.Publish(ctx, a.bcast, payload)
	_, err = pipe.Exec(ctx)
	if err != nil {
		return res, err
	}
	cur, _ := a.r.client.SCard(ctx, a.key(a.nodes, e)).Result() // other slot on a cluster
	res.Expected = int(max(prev.Val(), cur))
	if res.Here, err = a.hub.Disconnect(ctx, m, n); err != nil {
		return res, err
	}
	res.Disconnected, res.Acknowledged = res.Here, 1
	deadline := time.NewTimer(a.cfg.AckTimeout)
	defer deadline.Stop()
	seen := map[string]bool{a.node: true}
	for res.Acknowledged < res.Expected {
		select {
		case ack := <-acks:
			if seen[ack.Node] {
				continue
			}
			seen[ack.Node] = true
			res.Acknowledged++
			res.Disconnected += ack.Disconnected
		case <-deadline.C:
			return res, nil
		case <-ctx.Done():
			return res, nil
		}
	}
	return res, nil
}

// receive owns the admin subscription (PREFIX!admin and this node's
// inbox) and hands each message on without blocking.
func (a *Admin) receive() {
	defer a.wg.Done()
	bo := backoff{next: minBackoff}
	for {
		a.psMu.Lock()
		if a.ctx.Err() != nil {
			a.psMu.Unlock()
			return
		}
		a.ps = a.r.sub.Subscribe(a.ctx, a.bcast, a.inbox)
		ps := a.ps
		a.psMu.Unlock()
		for {
			msg, err := ps.ReceiveTimeout(a.ctx, a.r.cfg.PingInterval)
			if a.ctx.Err() != nil {
				_ = ps.Close()
				return
			}
			if err != nil && isTimeout(err) {
				if err = ps.Ping(a.ctx); err == nil {
					continue
				}
			}
			if err != nil {
				a.up.Store(false)
				break
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				bo.reset()
				if m.Count == 2 {
					a.up.Store(true)
				}
			case *redis.Message:
				a.handle(m.Channel, m.Payload)
			}
		}
		_ = ps.Close()
		if !bo.wait(a.ctx) {
			return
		}
	}
}

// handle checks one admin message: a request from another node goes to
// the worker, an acknowledgement to the disconnect waiting for it.
// Anything else is dropped and counted.
func (a *Admin) handle(channel, payload string) {
	if len(payload) > MaxAdminMessage {
		a.malformed.Add(1)
		return
	}
	strict := jsonv2.RejectUnknownMembers(true)
	if channel == a.inbox {
		var ack adminAck
		if err := jsonv2.Unmarshal([]byte(payload), &ack, strict); err != nil || !isNodeID(ack.ID) ||
			!isNodeID(ack.Node) || ack.Disconnected < 0 {
			a.malformed.Add(1)
			return
		}
		a.mu.Lock()
		acks := a.waiting[ack.ID]
		a.mu.Unlock()
		if acks != nil {
			select {
			case acks <- ack:
			default:
			}
		}
		return
	}
	var req adminRequest
	if err := jsonv2.Unmarshal([]byte(payload), &req, strict); err != nil || !req.valid() {
		a.malformed.Add(1)
		return
	}
	if req.From == a.node {
		return // done locally by Disconnect
	}
	select {
	case a.work <- &req:
	default:
		a.dropped.Add(1)
	}
}

// valid checks a request as the HTTP API checks a disconnect body, except
// that subject and channel may both be set (streams matching both), as
// actors.DisconnectMatch allows.
func (q *adminRequest) valid() bool {
	if !isNodeID(q.ID) || !isNodeID(q.From) || (q.Subject == nil && q.Channel == nil) {
		return false
	}
	if q.Subject != nil && *q.Subject == "" {
		return false
	}
	m, n := q.match()
	return m.Validate() == nil && n.Validate() == nil && q.RetryMS >= 0
}

func (q *adminRequest) match() (actors.DisconnectMatch, actors.DisconnectNotice) {
	var m actors.DisconnectMatch
	if q.Subject != nil {
		m.Subject = *q.Subject
	}
	if q.Channel != nil {
		m.Channel = *q.Channel
	}
	return m, actors.DisconnectNotice{Reason: q.Reason, Retry: time.Duration(q.RetryMS) * time.Millisecond}
}

// isNodeID accepts the ids this package makes: 32 lowercase hex digits.
func isNodeID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// worker runs the other nodes' disconnects here, one at a time, and
// acknowledges each to its origin.
func (a *Admin) worker() {
	defer a.wg.Done()
	for {
		select {
		case req := <-a.work:
			m, n := req.match()
			ctx, cancel := context.WithTimeout(a.ctx, a.cfg.AckTimeout)
			k, err := a.hub.Disconnect(ctx, m, n)
			if err == nil {
				ack, _ := jsonv2.Marshal(adminAck{ID: req.ID, Node: a.node, Disconnected: k})
				err = a.r.client.Publish(ctx, a.bcast+"!"+req.From, ack).Err()
			}
			cancel()
			if err != nil && a.ctx.Err() == nil {
				a.cfg.Logger.Warn("redisrelay: admin disconnect from another node failed", "err", err)
			}
		case <-a.ctx.Done():
			return
		}
	}
}
