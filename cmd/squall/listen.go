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
func listen(ctx context.Context, addr string, userTimeout, heartbeat time.Duration) (net.Listener, error) {
	lc := net.ListenConfig{}
	if userTimeout > 0 {
		lc.Control = userTimeoutControl(userTimeout)
		lc.KeepAliveConfig = keepAlive(userTimeout, heartbeat)
	}
	return lc.Listen(ctx, "tcp", addr)
}

// keepAlive is the TCP keepalive of accepted connections beside a user
// timeout. Linux fails a connection at the first keepalive timer that finds
// a probe unanswered and nothing received for the user timeout. With Go's
// default keepalive (first probe after 15 s of silence, the next 15 s
// later) and a 10 s user timeout, one lost probe or reply ends a healthy
// idle stream 30 s in: in the bench's scale run, 225 of 16,000 idle
// streams on loopback whose clients probe on the same 15 s schedule (and
// none when the clients did not probe). So probing starts once nothing has
// been heard for half the user timeout, and three probes go out before it
// runs out. With a heartbeat, an idle stream hears an ACK every heartbeat,
// so probing waits for a heartbeat's ACK to be late: a healthy stream is
// never probed, and a dead one is reaped by the user timeout on the
// heartbeat's data.
func keepAlive(userTimeout, heartbeat time.Duration) net.KeepAliveConfig {
	idle := userTimeout / 2
	if heartbeat > 0 {
		idle += heartbeat
	}
	return net.KeepAliveConfig{Enable: true, Idle: idle, Interval: max(userTimeout/6, time.Second), Count: 9}
}
