package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/actors/actorstest"
	"github.com/squall-sse/squall/httpedge"
)

// TestHalfDeadPeerIsReaped puts a client on a test host of its own (a
// network namespace joined to this one by a veth pair), lets it open a
// stream, then takes the link down: the client neither reads nor closes, and
// no FIN or RST ever arrives. The hub must notice from its heartbeats going
// unacknowledged and close the stream within heartbeat + write timeout.
func TestHalfDeadPeerIsReaped(t *testing.T) {
	if os.Getenv("SQUALL_HALFDEAD_CLIENT") != "" {
		t.Skip("this process is the client of the test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	ns, hostLink, hostIP := netnsPair(t)

	const heartbeat, writeTimeout = 200 * time.Millisecond, time.Second
	hub := actorstest.NewHub(t, actors.Config{Heartbeat: heartbeat, WriteTimeout: writeTimeout})
	ln, err := listen(context.Background(), hostIP+":0", writeTimeout, 0)
	require.NoError(t, err)
	srv := &http.Server{Handler: httpedge.New(httpedge.Config{Hub: hub})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hub.Drain(ctx, 0)
		_ = srv.Shutdown(ctx)
		<-served
	})

	// The client is this test binary, run inside the namespace.
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHalfDeadClient$")
	cmd.Env = append(os.Environ(), "SQUALL_HALFDEAD_CLIENT=http://"+ln.Addr().String()+"/events?channel=a")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(out)
	opened := false
	for lines.Scan() {
		if lines.Text() == "open" {
			opened = true
			break
		}
	}
	require.True(t, opened, "the client opened its stream")
	require.Eventually(t, func() bool { return hub.OpenStreams() == 1 }, 5*time.Second, time.Millisecond)

	cut := time.Now()
	sh(t, "ip", "link", "set", hostLink, "down")
	require.Eventually(t, func() bool { return hub.OpenStreams() == 0 }, 10*time.Second, 10*time.Millisecond,
		"the stream to a vanished peer is still open")
	reaped := time.Since(cut)
	t.Logf("half-dead peer reaped %v after the link went down (heartbeat %v, write timeout %v)", reaped.Round(time.Millisecond), heartbeat, writeTimeout)
	assert.Less(t, reaped, heartbeat+writeTimeout+time.Second, "reaped within heartbeat + write timeout (+1s slack for the kernel's retransmit timer)")
}

// TestHalfDeadClient is the client side of TestHalfDeadPeerIsReaped: it opens
// the stream, says so, and then only keeps the socket.
func TestHalfDeadClient(t *testing.T) {
	url := os.Getenv("SQUALL_HALFDEAD_CLIENT")
	if url == "" {
		t.Skip("run by TestHalfDeadPeerIsReaped")
	}
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close() // never reached: the test kills this process
	fmt.Println("open")
	select {} // never read, never close
}

// netnsPair makes a namespace holding one end of a veth pair and returns its
// name, the host end's link name and the host end's address; cleanup
// deletes them.
func netnsPair(t *testing.T) (ns, host, hostIP string) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	n := 2 + rand.IntN(250)
	ns, host, peer := fmt.Sprintf("squall-%d", n), fmt.Sprintf("sqh%d", n), fmt.Sprintf("sqp%d", n)
	hostIP, peerIP := fmt.Sprintf("10.213.%d.1", n), fmt.Sprintf("10.213.%d.2", n)
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", host).Run()
		_ = exec.Command("ip", "netns", "del", ns).Run()
	})
	sh(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	sh(t, "ip", "link", "set", peer, "netns", ns)
	sh(t, "ip", "addr", "add", hostIP+"/30", "dev", host)
	sh(t, "ip", "link", "set", host, "up")
	sh(t, "ip", "netns", "exec", ns, "ip", "addr", "add", peerIP+"/30", "dev", peer)
	sh(t, "ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
	sh(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	return ns, host, hostIP
}

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
}
