package redisrelay

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The relay runs on three kinds of Redis, all through one
// redis.UniversalClient: a single Redis, a Sentinel-managed master (a
// failover client: the same commands, another address after a failover),
// and a Redis Cluster. Only a cluster changes the layout: every key of a
// channel carries a hash tag, so the publish script's keys share one slot
// (see partition).

// newClient builds the client Config asks for, with the relay's fail-fast
// defaults filled into the zero fields, and reports whether the relay owns
// it (and closes it at Shutdown).
func newClient(c Config) (redis.UniversalClient, bool, error) {
	if c.Client != nil {
		return c.Client, false, nil
	}
	if c.Options != nil {
		o := *c.Options
		failFast(&o.DialTimeout, &o.DialerRetries, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
		o.Dialer = trackDialer(orDefault(o.Dialer, redis.NewDialer(&o)))
		return redis.NewClient(&o), true, nil
	}
	if c.URL == "" {
		return nil, false, errors.New("redisrelay: Config needs URL, Options or Client")
	}
	kind, u, err := parseURL(c.URL, c.SentinelMaster)
	if err != nil {
		return nil, false, fmt.Errorf("redisrelay: Redis URL: %w", err)
	}
	switch kind {
	case kindCluster:
		o, err := redis.ParseClusterURL(u)
		if err != nil {
			return nil, false, fmt.Errorf("redisrelay: Redis Cluster URL: %w", err)
		}
		failFast(&o.DialTimeout, &o.DialerRetries, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
		if o.Dialer == nil {
			o.Dialer = trackDialer(redis.NewDialer(&redis.Options{DialTimeout: o.DialTimeout, TLSConfig: o.TLSConfig}))
		}
		return redis.NewClusterClient(o), true, nil
	case kindSentinel:
		o, err := redis.ParseFailoverURL(u)
		if err != nil {
			return nil, false, fmt.Errorf("redisrelay: Redis Sentinel URL: %w", err)
		}
		failFast(&o.DialTimeout, &o.DialerRetries, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
		if o.Dialer == nil {
			o.Dialer = trackDialer(redis.NewDialer(&redis.Options{DialTimeout: o.DialTimeout, TLSConfig: o.TLSConfig}))
		}
		return redis.NewFailoverClient(o), true, nil
	}
	o, err := redis.ParseURL(u)
	if err != nil {
		return nil, false, fmt.Errorf("redisrelay: Redis URL: %w", err)
	}
	failFast(&o.DialTimeout, &o.DialerRetries, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
	o.Dialer = trackDialer(orDefault(o.Dialer, redis.NewDialer(o)))
	return redis.NewClient(o), true, nil
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

func orDefault(f, def dialFunc) dialFunc {
	if f == nil {
		return def
	}
	return f
}

// failFast fills the zero timeouts and retries so that a publish fails
// within about a second while Redis is away (the HTTP edge answers 503),
// and a publish is never sent twice: it is either known to be accepted or
// refused, and the caller decides.
func failFast(dial *time.Duration, dialerRetries *int, read, write, pool *time.Duration, maxRetries *int) {
	for _, d := range []*time.Duration{dial, read, write, pool} {
		if *d == 0 {
			*d = defaultIOTimeout
		}
	}
	if *dialerRetries == 0 {
		*dialerRetries = 1
	}
	if *maxRetries == 0 {
		*maxRetries = -1
	}
}

type backendKind int

const (
	kindSingle backendKind = iota
	kindCluster
	kindSentinel
)

// parseURL tells which kind of Redis a URL names and rewrites it into the
// form go-redis parses for that kind:
//
//   - redis+cluster://[user:pass@]h1:p1,h2:p2[?opts] (rediss+cluster:// for
//     TLS), or redis://h1:p1,h2:p2 with several hosts: a Redis Cluster
//     reached through these seeds;
//   - with a Sentinel master name, redis://[user:pass@]s1:p1,s2:p2[/db]:
//     the master the Sentinels at these addresses name;
//   - anything else: one Redis (go-redis's redis://, rediss://, unix://).
func parseURL(raw, sentinelMaster string) (backendKind, string, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return kindSingle, raw, nil
	}
	cluster := false
	switch scheme {
	case "redis+cluster", "rediss+cluster":
		cluster = true
		scheme = strings.TrimSuffix(scheme, "+cluster")
	case "redis", "rediss":
	default:
		if sentinelMaster != "" {
			return 0, "", fmt.Errorf("scheme %q cannot name Sentinels", scheme)
		}
		return kindSingle, raw, nil
	}
	// The host list ends at the first '/' or '?' after the user info.
	auth, hostsAndRest := "", rest
	if at := strings.LastIndex(rest[:firstOf(rest, "/?")], "@"); at >= 0 {
		auth, hostsAndRest = rest[:at+1], rest[at+1:]
	}
	end := firstOf(hostsAndRest, "/?")
	hosts, tail := strings.Split(hostsAndRest[:end], ","), hostsAndRest[end:]
	for _, h := range hosts {
		if h == "" {
			return 0, "", fmt.Errorf("empty host in %q", redact(raw))
		}
	}
	if sentinelMaster == "" && !cluster && len(hosts) == 1 {
		return kindSingle, raw, nil
	}
	if sentinelMaster != "" && cluster {
		return 0, "", errors.New("a Sentinel master name with a cluster URL")
	}
	path, query, _ := strings.Cut(tail, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return 0, "", err
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	kind := kindCluster
	if sentinelMaster != "" {
		kind = kindSentinel
		q.Set("master_name", sentinelMaster)
	} else if strings.Trim(path, "/") != "" && strings.Trim(path, "/") != "0" {
		return 0, "", errors.New("a Redis Cluster has only database 0")
	}
	if kind == kindCluster {
		path = ""
	}
	u := scheme + "://" + auth + hosts[0] + path
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	return kind, u, nil
}

func firstOf(s, chars string) int {
	if i := strings.IndexAny(s, chars); i >= 0 {
		return i
	}
	return len(s)
}

// redact hides a password in a URL quoted in an error.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return raw
}

// Partitions on a Redis Cluster. A channel's keys, and its sharded pub/sub
// channel, carry the hash tag of the channel's partition: the publish
// script's keys then share one slot, and the channels of one partition
// can be subscribed to with one SSUBSCRIBE (Redis refuses one across
// slots). The tags are chosen so that their slots spread evenly over the
// 16384 slots, whatever the number of masters: bare indexes as tags
// cluster on a few masters.
const slots = 16384

// partitionTags returns n tags, the i-th hashing into the i-th n-th of the
// slot range. The search is deterministic, so every node computes the same
// tags.
func partitionTags(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		lo, hi := i*slots/n, (i+1)*slots/n
		for k := 0; ; k++ {
			t := "p" + strconv.Itoa(i) + "." + strconv.Itoa(k)
			if s := int(crc16(t) % slots); s >= lo && s < hi {
				tags[i] = t
				break
			}
		}
	}
	return tags
}

// partition is the partition of a channel: a hash of its name, the same on
// every node.
func partition(channel string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(channel))
	return int(h.Sum32() % uint32(n))
}

// crc16 is CRC-16/XMODEM, the hash Redis Cluster maps keys to slots with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// onceCmd is a command go-redis must never retry, not even on a cluster,
// where a timeout or a lost connection is retried on the same or another
// node: a publish script run twice would deliver its event twice. MOVED
// and ASK are still followed (the script did not run).
type onceCmd struct{ *redis.Cmd }

func (onceCmd) NoRetry() bool { return true }

// runOnce runs a script with EVALSHA, and EVAL when the node does not know
// it (a promoted replica has an empty script cache), each sent once.
func runOnce(ctx context.Context, c redis.UniversalClient, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := scriptCmd(ctx, "evalsha", s.Hash(), keys, args)
	_ = c.Process(ctx, onceCmd{cmd})
	if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		cmd = scriptCmd(ctx, "eval", scriptSources[s], keys, args)
		_ = c.Process(ctx, onceCmd{cmd})
	}
	return cmd
}

func scriptCmd(ctx context.Context, name, script string, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, script, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	return redis.NewCmd(ctx, a...)
}

// scriptSources maps each script to its source, for EVAL.
var scriptSources = map[*redis.Script]string{}

func newScript(src string) *redis.Script {
	s := redis.NewScript(src)
	scriptSources[s] = src
	return s
}
