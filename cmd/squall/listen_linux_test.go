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
	ln, err := listen(context.Background(), "127.0.0.1:0", 7*time.Second)
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
	defer c.Close()
	if d, ok := <-dialed; ok {
		defer d.Close()
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var got int
	var gerr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}))
	require.NoError(t, gerr)
	assert.Equal(t, 7000, got, "TCP_USER_TIMEOUT of an accepted connection, ms")
}
