package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/sse"
)

// from dials from a given loopback address (all of 127/8 is local on
// Linux), so the hub sees distinct peers.
func from(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
}

// clientFrom is an HTTP client on one new connection per request.
func clientFrom(ip string) *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: from(ip).DialContext, DisableKeepAlives: true}}
}

// metric reads one sample of the hub's /metrics.
func metric(t *testing.T, c *http.Client, base, name string) int {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	require.NoError(t, err, "GET /metrics")
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(raw)
	require.NotNil(t, m, "%s in /metrics", name)
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return int(v)
}

// TestHostileSlowloris runs the real binary under a low open-file limit and
// attacks it from 127.0.0.1 with more slowloris sockets than it has file
// descriptors: headers never finished, publish bodies a byte at a time,
// idle keep-alives. The timeouts are set long, so only the connection
// limits hold the line: /healthz from 127.0.0.2 keeps answering, and once
// the attacker leaves the hub is fully back (every connection released,
// 127.0.0.1 served again) within seconds.
func TestHostileSlowloris(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("needs prlimit (util-linux)")
	}
	bin := squallBinary(t)
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	// Soft 200, hard 256: Go raises the soft limit to hard - 1 at start.
	cmd := exec.Command("prlimit", "--nofile=200:256", bin, "--addr", ":"+port,
		"--read-header-timeout", "1m", "--read-timeout", "1m", "--idle-timeout", "1m")
	cmd.Env = append(os.Environ(), "SQUALL_LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	startProcess(t, cmd)

	base := "http://" + addr
	victim := clientFrom("127.0.0.2")
	healthy := func() error {
		resp, err := victim.Get(base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	require.Eventually(t, func() bool { return healthy() == nil }, 20*time.Second, 20*time.Millisecond, "hub up")

	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
	require.NoError(t, err)
	assert.Regexp(t, `Max open files\s+255\s+256`, string(limits), "the runtime raised the soft limit to hard - 1")
	const maxConns = 255 - 64 // the reserve is 64 below 640 files
	require.Equal(t, maxConns, metric(t, victim, base, "squall_connections_max"))

	// The attack: three kinds, interleaved, 450 sockets in all.
	const perKind = 150
	attacker := from("127.0.0.1")
	var socks, bodies []net.Conn
	for i := range 3 * perKind {
		c, err := attacker.Dial("tcp", addr)
		if err != nil {
			continue // the backlog may be full for a moment
		}
		socks = append(socks, c)
		switch i % 3 {
		case 0: // headers never finished
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Slow: ")
		case 1: // a publish body a byte at a time
			_, _ = io.WriteString(c, "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
			bodies = append(bodies, c)
		case 2: // an idle keep-alive after one request
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
		}
	}
	stopTrickle := make(chan struct{})
	var trickling sync.WaitGroup
	trickling.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopTrickle:
				return
			case <-tick.C:
				for _, c := range bodies {
					_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
					_, _ = c.Write([]byte(" "))
				}
			}
		}
	})
	defer func() {
		close(stopTrickle)
		trickling.Wait()
	}()

	// Under attack: probes from another address are answered, a stream
	// opens, and the attacker holds no more than its per-address share.
	var worst time.Duration
	for range 20 {
		start := time.Now()
		require.NoError(t, healthy(), "GET /healthz from 127.0.0.2 under attack")
		worst = max(worst, time.Since(start))
	}
	streamClient := &http.Client{Transport: &http.Transport{DialContext: from("127.0.0.2").DialContext}}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?channel=a", nil)
	require.NoError(t, err)
	resp, err := streamClient.Do(req)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a stream from 127.0.0.2 under attack")
	cancel()
	resp.Body.Close()
	streamClient.CloseIdleConnections()
	// The stream's and the probes' connections take a moment to close.
	var open int
	assert.Eventually(t, func() bool {
		open = metric(t, victim, base, "squall_connections_open")
		return open <= maxConns/8+1
	}, 5*time.Second, 10*time.Millisecond, "connections open under attack: the attacker's share and the scrape")
	assert.Positive(t, metric(t, victim, base, `squall_connections_refused_total{limit="per_peer"}`))
	t.Logf("attack: %d sockets from 127.0.0.1, %d held by the hub; slowest /healthz from 127.0.0.2 %v", len(socks), open-1, worst)

	// The attacker leaves.
	for _, c := range socks {
		_ = c.Close()
	}
	left := time.Now()
	local := clientFrom("127.0.0.1")
	require.Eventually(t, func() bool {
		if metric(t, victim, base, "squall_connections_open") != 1 {
			return false
		}
		// 127.0.0.1's whole share is back.
		var wg sync.WaitGroup
		var failed sync.Once
		ok := true
		for range maxConns / 8 {
			wg.Go(func() {
				resp, err := local.Get(base + "/healthz")
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Do(func() { ok = false })
				}
			})
		}
		wg.Wait()
		return ok
	}, 10*time.Second, 10*time.Millisecond, "hub back after the attacker left")
	recovered := time.Since(left)
	t.Logf("fully back %v after the attacker left", recovered.Round(time.Millisecond))
	assert.Less(t, recovered, 5*time.Second)
}

// TestHostileSlowlorisTimeouts: a client that never finishes its headers,
// one that sends its body a byte at a time and an idle keep-alive are each
// cut at their timeout, while a stream outlives all three.
func TestHostileSlowlorisTimeouts(t *testing.T) {
	addr := freeAddr(t)
	logFile, err := os.CreateTemp(t.TempDir(), "log")
	require.NoError(t, err)
	defer logFile.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan error, 1)
	go func() {
		ran <- run(ctx, []string{"--addr", addr, "--read-header-timeout", "300ms", "--read-timeout", "600ms",
			"--idle-timeout", "400ms", "--heartbeat", "100ms", "--drain", "1s"}, func(string) string { return "" }, logFile)
	}()
	defer func() {
		stop()
		select {
		case err := <-ran:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			assert.Fail(t, "run did not return")
		}
	}()
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, 10*time.Second, 10*time.Millisecond, "hub up")

	// A stream outlives every timeout: it reads heartbeats past all of them.
	sresp, err := http.Get(base + "/events?channel=a")
	require.NoError(t, err)
	defer sresp.Body.Close()
	require.Equal(t, http.StatusOK, sresp.StatusCode)
	beats := make(chan struct{}, 100)
	p := sse.NewParser(bufio.NewReader(sresp.Body))
	p.Comment = func(string) { beats <- struct{}{} }
	streamEnd := make(chan error, 1)
	go func() {
		_, err := p.Next()
		streamEnd <- err
	}()
	streamStart := time.Now()

	cut := func(name, req string, trickle bool, min time.Duration) {
		// The clock starts before the dial: net/http starts a
		// connection's timeouts when it begins to read, which can be
		// before Dial returns here.
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, req)
		require.NoError(t, err)
		if trickle {
			go func() {
				for {
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond) // the slow client's pace, not a synchronisation
				}
			}()
		}
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err = io.Copy(io.Discard, c) // until the hub closes
		took := time.Since(start)
		assert.NoError(t, err, "%s: closed by the hub, not by the 5 s read deadline", name)
		assert.GreaterOrEqual(t, took, min, "%s: held until its timeout", name)
		assert.Less(t, took, min+time.Second, "%s: cut soon after its timeout", name)
	}
	cut("unfinished headers", "GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Slow: ", false, 300*time.Millisecond)
	cut("a body a byte at a time", "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Length: 100000\r\n\r\n{", true, 600*time.Millisecond)
	cut("an idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n", false, 400*time.Millisecond)

	require.Greater(t, time.Since(streamStart), 600*time.Millisecond)
	select {
	case err := <-streamEnd:
		require.FailNow(t, "the stream ended", "%v", err)
	default:
	}
	for len(beats) > 0 {
		<-beats
	}
	select {
	case <-beats:
	case <-time.After(2 * time.Second):
		require.FailNow(t, "no heartbeat on the stream after every timeout passed")
	}
}

func TestServeFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	o, err := parse(nil, noEnv)
	require.NoError(t, err)
	assert.Equal(t, 10*time.Second, o.serve.readHeaderTimeout)
	assert.Equal(t, 30*time.Second, o.serve.readTimeout)
	assert.Equal(t, 75*time.Second, o.serve.idleTimeout)
	files, ok := fdLimit()
	require.True(t, ok, "an open-file limit on Linux")
	l, _ := o.serve.connLimits(false)
	assert.Equal(t, int(files)-fdReserve(int(files)), l.Max, "auto: the limit minus the reserve")
	assert.Equal(t, l.Max/8, l.MaxPerPeer, "auto per address: an eighth")
	l, _ = o.serve.connLimits(true)
	assert.Zero(t, l.MaxPerPeer, "behind a trusted proxy every connection is the proxy's: no per-address limit")

	o, err = parse([]string{"--max-conns", "100", "--trust-proxy"}, func(k string) string {
		return map[string]string{"SQUALL_MAX_CONNS_PER_IP": "7"}[k]
	})
	require.NoError(t, err)
	l, _ = o.serve.connLimits(o.edge.trustProxy)
	assert.Equal(t, 100, l.Max)
	assert.Equal(t, 7, l.MaxPerPeer, "given, it applies behind a proxy too")

	o, err = parse([]string{"--max-conns", "0", "--max-conns-per-ip", "0"}, noEnv)
	require.NoError(t, err)
	l, _ = o.serve.connLimits(false)
	assert.Zero(t, l.Max)
	assert.Zero(t, l.MaxPerPeer)

	_, err = parse([]string{"--max-conns", "-1"}, noEnv)
	assert.ErrorContains(t, err, "auto")

	for files, want := range map[int]int{256: 192, 1024: 922, 20000: 18976, 1 << 20: 1<<20 - 1024, 100: 50} {
		assert.Equal(t, want, files-fdReserve(files), "connection limit for %d open files", files)
	}
	assert.Equal(t, 172, streamRoom(191), "streams under 191 connections")
}
