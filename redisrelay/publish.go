package redisrelay

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge/sse"
)

// publishScript appends an event to its channel's history and publishes it,
// atomically, so that the stream id Redis assigns is the event's place in
// the history on every node and, when the publisher gave none, its id.
//
// The entry keeps the publisher's id in field "i" ("" when none) and the
// envelope's other fields in "e", a JSON object; the envelope itself is
// built here because it carries the entry id.
//
//	KEYS[1]  the history stream
//	ARGV[1]  the pub/sub channel
//	ARGV[2]  the envelope's head, `{"v":1,"channel":"NAME",`
//	ARGV[3]  the body, `{"data":…,"event":…,"retry":…}`
//	ARGV[4]  the publisher's id, raw, or ""
//	ARGV[5]  the publisher's id as a JSON string, or ""
//	ARGV[6]  MAXLEN: the history count plus one (see replayScript), or 0
//	         when history is off and the stream only assigns ids
//	ARGV[7]  the age bound in ms (0: none): trims, and expires the key
//	ARGV[8]  "1" when history is on
//
// Age trimming keeps the newest entry that has aged out, as the marker
// that tells a client who saw it that it missed nothing (see replayScript).
const publishSrc = `
local key = KEYS[1]
local keep = ARGV[8] == '1'
local stored = ''
if keep then stored = ARGV[3] end
local id = redis.call('XADD', key, 'MAXLEN', '=', ARGV[6], '*', 'i', ARGV[4], 'e', stored)
local ttl = tonumber(ARGV[7])
if ttl > 0 then
  if keep then
    local t = redis.call('TIME')
    local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - ttl
    if cutoff > 0 then
      local bound = '(' .. string.format('%.0f', cutoff) .. '-0'
      -- Forward from the oldest is cheap; a reverse seek costs a node scan,
      -- so it is kept for the rare case of many aged entries.
      local old = redis.call('XRANGE', key, '-', bound, 'COUNT', 3)
      if #old == 3 then
        local newest = redis.call('XREVRANGE', key, bound, '-', 'COUNT', 1)
        redis.call('XTRIM', key, 'MINID', '=', newest[1][1])
      elseif #old == 2 then
        redis.call('XTRIM', key, 'MINID', '=', old[2][1])
      end
    end
  end
  redis.call('PEXPIRE', key, ttl)
end
local idjson = ARGV[5]
if idjson == '' then idjson = '"' .. id .. '"' end
local env = ARGV[2]
if keep then env = env .. '"pos":"' .. id .. '",' end
env = env .. '"id":' .. idjson .. ',' .. string.sub(ARGV[3], 2)
redis.call('PUBLISH', ARGV[1], env)
return id
`

var publishScript = redis.NewScript(publishSrc)

var bufs = sync.Pool{New: func() any { return new([]byte) }}

// Publish appends ev to channel's history in Redis and publishes it to every
// node's relay, in one round trip, and returns the event's id: ev.ID when
// set, else the history stream's entry id ("<ms>-<seq>", ordered within the
// channel). With history off (History < 0) the id is still a stream id,
// from a stream that keeps no entry.
//
// It implements httpedge.Publisher. An error means the event was not
// accepted (Redis is away, or ev is invalid): it is never accepted and then
// lost. The id, event name and data must be valid UTF-8 ([ErrNotUTF8]).
func (r *Relay) Publish(ctx context.Context, channel string, ev sse.Event) (string, error) {
	p, err := r.PublishOnce(ctx, channel, ev, "")
	return p.ID, err
}

// PublishOnce is [Relay.Publish] with an idempotency key (see
// actors.Cluster): it implements actors.Cluster.
//
// TODO(issue 14): honour key; tell a refused publish from one whose
// outcome is unknown.
func (r *Relay) PublishOnce(ctx context.Context, channel string, ev sse.Event, key string) (actors.Published, error) {
	id, err := r.publish(ctx, channel, ev)
	return actors.Published{ID: id}, err
}

func (r *Relay) publish(ctx context.Context, channel string, ev sse.Event) (string, error) {
	if r.closed.Load() {
		return "", ErrClosed
	}
	if err := validChannel(channel); err != nil {
		return "", fmt.Errorf("redisrelay: publish to %q: %w", channel, err)
	}
	if err := ev.Validate(); err != nil {
		return "", fmt.Errorf("redisrelay: publish to %q: %w", channel, err)
	}
	if err := checkUTF8(ev); err != nil {
		return "", fmt.Errorf("redisrelay: publish to %q: %w", channel, err)
	}
	if len(ev.ID) > MaxID {
		return "", fmt.Errorf("redisrelay: publish to %q: id over %d bytes", channel, MaxID)
	}

	bp := bufs.Get().(*[]byte)
	b := appendHead((*bp)[:0], channel)
	nHead := len(b)
	b = appendBody(b, ev)
	nBody := len(b)
	if ev.ID != "" {
		b = appendJSONString(b, ev.ID)
	}
	keep, maxLen, ttl := "1", r.cfg.History+1, r.cfg.HistoryTTL.Milliseconds()
	if r.cfg.History < 0 {
		keep, maxLen = "0", 0
		if ttl <= 0 {
			ttl = noIDExpiry.Milliseconds()
		}
	}
	if ttl < 0 {
		ttl = 0
	}
	// go-redis writes the arguments before Run returns, so the buffer can
	// go back to the pool afterwards.
	res, err := publishScript.Run(ctx, r.client, []string{r.hist + channel},
		r.head+channel, b[:nHead], b[nHead:nBody], ev.ID, b[nBody:],
		strconv.Itoa(maxLen), strconv.FormatInt(ttl, 10), keep).Text()
	if cap(b) <= 64<<10 {
		*bp = b
		bufs.Put(bp)
	}
	if err != nil {
		r.pubErr.Store(&err)
		return "", fmt.Errorf("redisrelay: publish to %q: %w", channel, err)
	}
	if r.pubErr.Load() != nil {
		r.pubErr.Store(nil)
	}
	if ev.ID != "" {
		return ev.ID, nil
	}
	return res, nil
}
