package redisrelay

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// probeScript writes a short-lived key, so that it meets every refusal the
// publish script meets: at its first write Redis refuses a script for OOM
// (maxmemory with noeviction), READONLY (a replica) or MISCONF (a failed
// save), and a connection without the password gets NOAUTH. A PING meets
// none of these. It answers the Redis clock (TIME), which dates the
// interest points (see clockSkew).
//
//	KEYS[1]  PREFIX:probe, or PREFIX:probe:{TAG} for each partition of a
//	         cluster, so that every master is probed
//	ARGV[1]  its expiry in ms
var probeScript = redis.NewScript(`redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return redis.call('TIME')`)

// probe runs the write probe every ProbeInterval until Shutdown, so that
// Ready turns down within about one interval of Redis refusing writes, with
// or without publishes, and back up once it takes them again.
func (r *Relay) probe() {
	defer r.loop.Done()
	keys := []string{r.cfg.Prefix + ":probe"}
	if r.cluster {
		keys = make([]string, len(r.tags))
		for i, t := range r.tags {
			keys[i] = r.cfg.Prefix + ":probe:{" + t + "}"
		}
	}
	expiry := strconv.FormatInt(max(4*r.cfg.ProbeInterval, time.Second).Milliseconds(), 10)
	t := time.NewTicker(r.cfg.ProbeInterval)
	defer t.Stop()
	cmds := make([]*redis.Cmd, len(keys))
	probedOnce := false
	for {
		// The client's read timeout (1s by default) bounds a probe of a
		// hung Redis. One command per key, not a pipeline: a pipeline that
		// cannot get a connection (go-redis's dial breaker is open) leaves
		// its commands without an error, which read as a working Redis.
		sent := time.Now()
		for i, k := range keys {
			cmds[i] = probeScript.Run(r.ctx, r.client, []string{k}, expiry)
		}
		got := time.Now()
		if r.ctx.Err() != nil {
			return
		}
		var first error
		for i, c := range cmds {
			err := c.Err()
			var rerr redis.Error
			if err != nil && errors.As(err, &rerr) {
				r.refused[i].Store(&err)
			} else {
				r.refused[i].Store(nil)
			}
			if err != nil {
				if first == nil {
					first = err
				}
				continue
			}
			r.clock.measure(i, c.Val(), sent, got)
		}
		if first != nil {
			r.writeFailed(first)
			r.reloadSlots(first)
		} else {
			r.writeWorked()
		}
		if !probedOnce {
			probedOnce = true
			close(r.probed)
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
	r.reloadSlots(err)
}

// reloadSlots has a cluster client reload its slot map after a failure
// that was not Redis's answer (a dead master, a connection lost): the
// publish is not retried, so go-redis would not learn of a failover until
// its periodic reload.
func (r *Relay) reloadSlots(err error) {
	var rerr redis.Error
	if cc, ok := r.client.(*redis.ClusterClient); ok && (!errors.As(err, &rerr) || strings.HasPrefix(err.Error(), "CLUSTERDOWN")) {
		cc.ReloadState(r.ctx)
	}
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
