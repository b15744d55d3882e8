package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestAcceptedConnectionsHaveUserTimeout(t *testing.T) {
	c := acceptOne(t, 7*time.Second, 0)
	assert.Equal(t, 7000, sockopt(t, c, unix.TCP_USER_TIMEOUT), "TCP_USER_TIMEOUT of an accepted connection, ms")
}

// Three keepalive probes fit in the user timeout, so that one lost probe
// does not end a healthy idle stream; with a heartbeat, probing waits for a
// heartbeat's ACK to be late.
func TestKeepaliveProbesFitInTheUserTimeout(t *testing.T) {
	for _, tc := range []struct {
		heartbeat            time.Duration
		idle, interval, user int // seconds, seconds, ms
	}{
		{0, 5, 2, 10000},
		{15 * time.Second, 20, 2, 10000},
	} {
		c := acceptOne(t, 10*time.Second, tc.heartbeat)
		idle, interval := sockopt(t, c, unix.TCP_KEEPIDLE), sockopt(t, c, unix.TCP_KEEPINTVL)
		assert.Equal(t, tc.idle, idle, "TCP_KEEPIDLE, heartbeat %v", tc.heartbeat)
		assert.Equal(t, tc.interval, interval, "TCP_KEEPINTVL, heartbeat %v", tc.heartbeat)
		user := sockopt(t, c, unix.TCP_USER_TIMEOUT)
		assert.Equal(t, tc.user, user)
		if tc.heartbeat == 0 {
			assert.GreaterOrEqual(t, user/1000-idle, 3*interval-1, "probes before the user timeout runs out")
		}
	}
}

func acceptOne(t *testing.T, userTimeout, heartbeat time.Duration) net.Conn {
	t.Helper()
	ln, err := listen(context.Background(), "127.0.0.1:0", userTimeout, heartbeat)
	require.NoError(t, err)
	defer ln.Close()
	dialed := make(chan net.Conn, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			dialed <- c
		}
		close(dialed)
	}()
	c, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	if d, ok := <-dialed; ok {
		t.Cleanup(func() { d.Close() })
	}
	return c
}

func sockopt(t *testing.T, c net.Conn, opt int) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var got int
	var gerr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, opt)
	}))
	require.NoError(t, gerr)
	return got
}
