//go:build !linux

package main

import (
	"syscall"
	"time"
)

// userTimeoutControl does nothing: TCP_USER_TIMEOUT is Linux's. Streams to
// a vanished peer then end when a write's deadline passes, once the
// kernel's send buffer has filled.
func userTimeoutControl(time.Duration) func(_, _ string, c syscall.RawConn) error {
	return nil
}
