package main

import (
	"context"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens the hub's listener. Every accepted connection gets
// TCP_USER_TIMEOUT: a peer that vanished without a FIN (a laptop lid, a
// dropped NAT entry) stops acknowledging, and the kernel then fails the
// connection once sent data has gone unacknowledged for userTimeout. With a
// heartbeat, every idle stream sends data, so a dead peer is reaped within
// about heartbeat + userTimeout instead of the kernel's default of minutes.
func listen(ctx context.Context, addr string, userTimeout time.Duration) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		if userTimeout <= 0 {
			return nil
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			// Accepted sockets inherit it from the listening socket.
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout.Milliseconds()))
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(ctx, "tcp", addr)
}
