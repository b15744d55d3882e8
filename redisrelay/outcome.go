package redisrelay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/actors"
)

// A publish error must say whether the event may have been taken, since a
// publisher that retries an event Redis did take delivers it twice. go-redis
// does not say at which step a command failed, so the relay dials its own
// connections (see trackDialer) and marks the failures that happen before
// the whole command can have reached Redis: a failed dial and a failed
// write. With retries off, a command is written at most once.

// notSentError marks an error of a step before the command was complete on
// the wire.
type notSentError struct {
	step string
	err  error
}

func (e *notSentError) Error() string { return e.step + ": " + e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// Timeout keeps the error a net.Error that go-redis recognises.
func (e *notSentError) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}

func (e *notSentError) Temporary() bool { return false }

// classify turns an error of a publish script into one that says what
// became of the event: a plain error when it was certainly not taken, one
// wrapping actors.ErrOutcomeUnknown otherwise.
func (r *Relay) classify(ctx context.Context, err error) error {
	var rerr redis.Error
	var ns *notSentError
	switch {
	case errors.As(err, &rerr):
		// Redis answered with an error: the script cannot fail after its
		// first write, so it wrote nothing.
		return err
	case errors.As(err, &ns), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed):
		return err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return err
	}
	// A read timeout, a connection reset or closed while waiting for the
	// answer, or ctx ending meanwhile: Redis may have run the script.
	return fmt.Errorf("%w: %w", actors.ErrOutcomeUnknown, err)
}

// trackDialer wraps dial (go-redis's default dialer when nil) so that its
// errors and the write errors of its connections are marked as not sent.
func trackDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &notSentError{step: "dial", err: err}
		}
		t := trackedConn{Conn: c}
		if sc, ok := c.(syscall.Conn); ok {
			// go-redis checks a pooled connection's health through its
			// file descriptor before using it: keep that possible, so that a
			// connection Redis closed is not written to.
			return &trackedSysConn{trackedConn: t, sc: sc}, nil
		}
		return &t, nil
	}
}

// trackedConn marks a short write: a command whose last byte did not reach
// the kernel cannot have been read whole by Redis, which drops it when the
// connection closes (go-redis closes it after any write error).
type trackedConn struct {
	net.Conn
}

func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && n < len(b) {
		return n, &notSentError{step: "write", err: err}
	}
	return n, err
}

type trackedSysConn struct {
	trackedConn
	sc syscall.Conn
}

func (c *trackedSysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }
