package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
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
// speak HTTP/1.0, so the body comes without chunking: one 2 KiB buffer
// and one goroutine per stream.
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
	type receipt struct {
		seq int
		ms  int
	}
	got := make(chan receipt, 4096)
	var resets atomic.Int64
	var ready sync.WaitGroup
	ready.Add(*conns)
	fail := make(chan error, 1)
	// At most this many streams are being opened at once, so that a loaded
	// hub is not handed more requests than it reads within its header
	// timeout.
	opening := make(chan struct{}, 200)
	for i := range *conns {
		host := hosts[(*offset+i)%len(hosts)]
		go func() {
			err := scaleStream(host, *channel, opening, &ready, &resets, func(seq, ms int) { got <- receipt{seq, ms} })
			select {
			case fail <- fmt.Errorf("stream %d: %w", i, err):
			default:
			}
		}()
	}
	connected := make(chan struct{})
	go func() { ready.Wait(); close(connected) }()
	select {
	case <-connected:
	case err := <-fail:
		fmt.Fprintln(os.Stderr, "scale-gen:", err)
		return 1
	}
	fmt.Println("ready")
	hists := map[int]map[int]int{}
	counts := map[int]int{}
	for {
		select {
		case r := <-got:
			h := hists[r.seq]
			if h == nil {
				h = map[int]int{}
				hists[r.seq] = h
			}
			h[r.ms]++
			counts[r.seq]++
			if counts[r.seq] == *conns {
				b, _ := json.Marshal(struct {
					Hist   map[int]int
					Resets int64
				}{h, resets.Load()})
				fmt.Println(string(b))
				delete(hists, r.seq)
			}
		case err := <-fail:
			fmt.Fprintln(os.Stderr, "scale-gen:", err)
			return 1
		}
	}
}

// scaleStream reads one stream until it fails. Opening it is tried a few
// times: a hub under a storm of connections may reset some. A stream cut
// later resumes with Last-Event-ID, as a browser would; resets counts it.
func scaleStream(host, channel string, opening chan struct{}, ready *sync.WaitGroup, resets *atomic.Int64, report func(seq, ms int)) error {
	open := func(lastID string) (net.Conn, *bufio.Reader, error) {
		var err error
		for try := 0; try < 5; try++ {
			if try > 0 {
				time.Sleep(time.Duration(100<<try) * time.Millisecond) // backoff before retrying the open
			}
			opening <- struct{}{}
			c, rd, e := openScaleStream(host, channel, lastID)
			<-opening
			if e == nil {
				return c, rd, nil
			}
			err = e
		}
		return nil, nil, err
	}
	c, rd, err := open("")
	ready.Done()
	if err != nil {
		return err
	}
	lastID := ""
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			c.Close()
			resets.Add(1)
			if c, rd, err = open(lastID); err != nil {
				return err
			}
			continue
		}
		if id, ok := bytes.CutPrefix(line, []byte("id: ")); ok {
			lastID = string(bytes.TrimSpace(id))
			continue
		}
		rest, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 {
			continue
		}
		seq, _ := strconv.Atoi(f[0])
		ns, _ := strconv.ParseInt(f[1], 10, 64)
		report(seq, int(time.Since(time.Unix(0, ns)).Milliseconds()))
	}
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
	if _, err := fmt.Fprintf(c, "GET /events?channel=%s HTTP/1.0\r\nHost: %s\r\n%s\r\n", channel, host, resume); err != nil {
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
