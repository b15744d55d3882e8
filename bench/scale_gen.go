package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/squall-sse/squall/bench/internal/loadgen"
)

// scaleGenMain is one generator process of the scale scenario: it opens
// its streams, says "ready" once every one has its response head, then for
// each broadcast (data "SEQ UNIXNANOS") prints one JSON line, once every
// stream got it, with the histogram of receipt latencies in ms. Streams
// speak HTTP/1.1, as browsers do, so the hub serves them as it serves
// theirs; each flush is one chunk of whole events, so the chunk framing
// lines are skipped like any other line. Streams are read by a poller of
// epoll sets (scale_gen_poll.go), not a goroutine each.
func scaleGenMain(args []string) int {
	fs := flag.NewFlagSet("scale-gen", flag.ContinueOnError)
	servers := fs.String("servers", "", "comma-separated base URLs")
	conns := fs.Int("conns", 100, "streams")
	offset := fs.Int("offset", 0, "index of the first stream, to spread streams over the servers")
	channel := fs.String("channel", scaleChannel, "channel")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := loadgen.RaiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "scale-gen:", err)
		return 1
	}
	var hosts []string
	for _, s := range strings.Split(*servers, ",") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			fmt.Fprintf(os.Stderr, "scale-gen: server %q\n", s)
			return 2
		}
		hosts = append(hosts, u.Host)
	}
	t := newTally(*conns)
	p, err := newPoller(hosts, *offset, *conns, *channel, t.add)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale-gen:", err)
		return 1
	}
	defer p.close()
	var ready sync.WaitGroup
	ready.Add(*conns)
	for i := range *conns {
		go p.start(i, &ready)
	}
	connected := make(chan struct{})
	go func() { ready.Wait(); close(connected) }()
	select {
	case <-connected:
	case err := <-p.fail:
		fmt.Fprintln(os.Stderr, "scale-gen:", err)
		return 1
	}
	fmt.Println("ready")
	for {
		select {
		case seq := <-t.done:
			b, _ := json.Marshal(struct {
				Hist   map[int]int
				Resets int64
			}{t.take(seq), p.resets.Load()})
			fmt.Println(string(b))
		case err := <-p.fail:
			fmt.Fprintln(os.Stderr, "scale-gen:", err)
			return 1
		}
	}
}

// tallyMaxMs is the largest latency told apart: the orchestrator gives up
// on a broadcast after 2 minutes.
const tallyMaxMs = 120_000

// tally counts receipts where they happen, with atomic adds, so that a
// receipt costs its stream's goroutine no hand-off to another goroutine.
// Broadcasts are sequential (the next is published once every stream of
// every generator got the last), and a stream resumed after a cut gets
// only what it missed, so a few slots indexed by seq cover every
// broadcast in flight.
type tally struct {
	conns int64
	done  chan int // seq whose last receipt arrived
	slots [4]struct {
		n  atomic.Int64
		ms [tallyMaxMs + 1]atomic.Int32
	}
}

func newTally(conns int) *tally {
	t := &tally{conns: int64(conns)}
	t.done = make(chan int, len(t.slots))
	return t
}

func (t *tally) add(seq, ms int) {
	s := &t.slots[seq%len(t.slots)]
	s.ms[min(max(ms, 0), tallyMaxMs)].Add(1)
	if s.n.Add(1) == t.conns {
		t.done <- seq
	}
}

// take returns the histogram of seq and empties its slot for seq+4.
func (t *tally) take(seq int) map[int]int {
	s := &t.slots[seq%len(t.slots)]
	h := map[int]int{}
	for ms := range s.ms {
		if n := s.ms[ms].Swap(0); n > 0 {
			h[ms] = int(n)
		}
	}
	s.n.Store(0)
	return h
}

// openScaleStream sends the request and reads the response head.
func openScaleStream(host, channel, lastID string) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", host, time.Minute)
	if err != nil {
		return nil, nil, err
	}
	resume := ""
	if lastID != "" {
		resume = "Last-Event-ID: " + lastID + "\r\n"
	}
	if _, err := fmt.Fprintf(c, "GET /events?channel=%s HTTP/1.1\r\nHost: %s\r\n%s\r\n", channel, host, resume); err != nil {
		c.Close()
		return nil, nil, err
	}
	rd := bufio.NewReaderSize(c, 2048)
	status, err := rd.ReadSlice('\n')
	if err != nil || !bytes.Contains(status, []byte(" 200 ")) {
		c.Close()
		return nil, nil, fmt.Errorf("status %q: %v", status, err)
	}
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return c, rd, nil
		}
	}
}

// atoiBytes parses a non-negative decimal without allocating; -1 if b is
// not one.
func atoiBytes(b []byte) int64 {
	if len(b) == 0 || len(b) > 19 {
		return -1
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + uint64(c-'0')
	}
	if n > math.MaxInt64 {
		return -1
	}
	return int64(n)
}
