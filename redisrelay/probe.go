package redisrelay

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// probeScript writes a short-lived key, so that it meets every refusal the
// publish script meets: at its first write Redis refuses a script for OOM
// (maxmemory with noeviction), READONLY (a replica) or MISCONF (a failed
// save), and a connection without the password gets NOAUTH. A PING meets
// none of these.
//
//	KEYS[1]  PREFIX:probe
//	ARGV[1]  its expiry in ms
var probeScript = redis.NewScript(`return redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])`)

// probe runs the write probe every ProbeInterval until Shutdown, so that
// Ready turns down within about one interval of Redis refusing writes, with
// or without publishes, and back up once it takes them again.
func (r *Relay) probe() {
	defer r.loop.Done()
	key := []string{r.cfg.Prefix + ":probe"}
	expiry := strconv.FormatInt(max(4*r.cfg.ProbeInterval, time.Second).Milliseconds(), 10)
	t := time.NewTicker(r.cfg.ProbeInterval)
	defer t.Stop()
	for {
		// The client's read timeout (1s by default) bounds a probe of a
		// hung Redis.
		err := probeScript.Run(r.ctx, r.client, key, expiry).Err()
		if r.ctx.Err() != nil {
			return
		}
		var rerr redis.Error
		if err != nil && errors.As(err, &rerr) {
			r.refused.Store(&err)
		} else {
			r.refused.Store(nil)
		}
		if err != nil {
			r.writeFailed(err)
		} else {
			r.writeWorked()
		}
		select {
		case <-t.C:
		case <-r.ctx.Done():
			return
		}
	}
}

// publishFailed records a publish that Redis refused or that failed on its
// way, unless the caller gave up, which says nothing about Redis. Repeated
// failures are logged at most once per LogInterval, with their count.
func (r *Relay) publishFailed(ctx context.Context, err error) {
	if callerGaveUp(ctx, err) {
		return
	}
	r.writeFailed(err)
	r.refusals.note(r.cfg.Logger, r.cfg.LogInterval, err)
}

// writeFailed turns Ready down, and logs when it was up.
func (r *Relay) writeFailed(err error) {
	if old := r.writeErr.Swap(&err); old == nil {
		r.cfg.Logger.Warn("redisrelay: writes to Redis fail: not ready, publishes answer 503 (refused) or 504 (outcome unknown)", "err", err)
	}
}

// writeWorked turns Ready up, and logs when it was down.
func (r *Relay) writeWorked() {
	if r.writeErr.Load() == nil {
		return
	}
	if old := r.writeErr.Swap(nil); old != nil {
		r.cfg.Logger.Info("redisrelay: writes to Redis work again", "was", *old)
	}
}

// refusalLog logs failed publishes at most once per interval, with how many
// failed since the last log, so that an outage under load writes a line per
// interval rather than one per publish.
type refusalLog struct {
	mu   sync.Mutex
	last time.Time
	n    uint64
}

func (l *refusalLog) note(log *slog.Logger, every time.Duration, err error) {
	l.mu.Lock()
	l.n++
	now := time.Now()
	if now.Sub(l.last) < every {
		l.mu.Unlock()
		return
	}
	n := l.n
	l.n, l.last = 0, now
	l.mu.Unlock()
	log.Warn("redisrelay: publishes failed", "count", n, "last_err", err)
}

// callerGaveUp tells the caller giving up, which says nothing about Redis,
// from a failure of Redis.
func callerGaveUp(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
