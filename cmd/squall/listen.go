package main

import (
	"context"
	"net"
	"time"
)

// listen opens the hub's listener. On Linux every accepted connection gets
// TCP_USER_TIMEOUT (see userTimeoutControl): a peer that vanished without a
// FIN (a laptop lid, a dropped NAT entry) stops acknowledging, and the
// kernel then fails the connection once sent data has gone unacknowledged
// for userTimeout. With a heartbeat, every idle stream sends data, so a dead
// peer is reaped within about heartbeat + userTimeout instead of the
// kernel's default of minutes. Elsewhere the write deadline of each flush
// still ends a stream whose peer stopped reading, only later.
func listen(ctx context.Context, addr string, userTimeout time.Duration) (net.Listener, error) {
	lc := net.ListenConfig{}
	if userTimeout > 0 {
		lc.Control = userTimeoutControl(userTimeout)
	}
	return lc.Listen(ctx, "tcp", addr)
}
