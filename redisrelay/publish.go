package redisrelay

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/sse"
)

// publishScript appends an event to its channel's history and publishes it,
// atomically, so that the stream id Redis assigns is the event's place in
// the history on every node and, when the publisher gave none, its id.
//
// The entry keeps the publisher's id in field "i" ("" when none) and the
// envelope's other fields in "e", a JSON object; the envelope itself is
// built here because it carries the entry id.
//
//	KEYS[1]  the history stream, PREFIX:history:C
//	KEYS[2]  the publisher-id index, PREFIX:history-ids:C, a hash:
//	         publisher id → stream id of its most recent retained entry
//	KEYS[3]  the entry log, PREFIX:history-log:C, a list of the retained
//	         entries oldest first, "<stream id>" or "<stream id> <publisher id>"
//	KEYS[4]  the idempotency key, PREFIX:idem:C|KEY (absent without a key)
//	ARGV[1]  the pub/sub channel
//	ARGV[2]  the envelope's head, `{"v":1,"channel":"NAME",`
//	ARGV[3]  the body, `{"data":…,"event":…,"retry":…}`
//	ARGV[4]  the publisher's id, raw, or ""
//	ARGV[5]  the publisher's id as a JSON string, or ""
//	ARGV[6]  MAXLEN: the history count plus one (see replayScript), or 0
//	         when history is off and the stream only assigns ids
//	ARGV[7]  the age bound in ms (0: none): trims, and expires the keys
//	ARGV[8]  "1" when history is on
//	ARGV[9]  the idempotency window in ms
//	ARGV[10] PUBLISH, or SPUBLISH with sharded pub/sub (the channel is then
//	         in the keys' slot)
//
// It answers {id, 0} for a new event and {the first id, 1} for a repeated
// idempotency key, which writes and publishes nothing.
//
// It cannot fail after its first write (the XADD): Redis refuses a script
// for OOM, READONLY or MISCONF only at its first write, and every key is
// type-checked before it, so an error reply always means nothing was
// written and the event was not taken.
//
// The log mirrors the stream, so that trimming pops exactly the entries
// trimmed, in O(entries trimmed), and drops their publisher ids from the
// index without reading any event's data. Age trimming keeps the newest
// entry that has aged out, as the marker that tells a client who saw it
// that it missed nothing (see replayScript). Should the log and the stream
// disagree (a key deleted or evicted by hand), the history restarts from
// this entry: clients resuming from before it get a reset, never a wrong
// replay.
const publishSrc = `
local stream, ids, log, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local keep = ARGV[8] == '1'
local pid = ARGV[4]
if idem then
  local prior = redis.call('GET', idem)
  if prior then return {prior, 1} end
end
if keep then
  for _, k in ipairs({{ids, 'hash'}, {log, 'list'}}) do
    local t = redis.call('TYPE', k[1])['ok']
    if t ~= 'none' and t ~= k[2] then
      return redis.error_reply('WRONGTYPE ' .. k[1] .. ' is a ' .. t)
    end
  end
end
local stored = ''
if keep then stored = ARGV[3] end
local id = redis.call('XADD', stream, 'MAXLEN', '=', ARGV[6], '*', 'i', pid, 'e', stored)
local ttl = tonumber(ARGV[7])
local keys = {stream}
if keep then
  keys = {stream, ids, log}
  local entry = id
  if pid ~= '' then entry = id .. ' ' .. pid end
  local function drop(e)
    local sp = string.find(e, ' ', 1, true)
    if sp then
      local p = string.sub(e, sp + 1)
      if redis.call('HGET', ids, p) == string.sub(e, 1, sp - 1) then
        redis.call('HDEL', ids, p)
      end
    end
  end
  local n = redis.call('RPUSH', log, entry)
  if pid ~= '' then redis.call('HSET', ids, pid, id) end
  local over = n - tonumber(ARGV[6])
  if over > 0 then
    for _, e in ipairs(redis.call('LPOP', log, over)) do drop(e) end
    n = n - over
  end
  if ttl > 0 then
    local t = redis.call('TIME')
    local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - ttl
    local aged = false
    while n >= 2 do
      local second = redis.call('LINDEX', log, 1)
      if tonumber(string.match(second, '^%d+')) >= cutoff then break end
      drop(redis.call('LPOP', log))
      n = n - 1
      aged = true
    end
    if aged then
      local oldest = redis.call('LINDEX', log, 0)
      redis.call('XTRIM', stream, 'MINID', '=', string.match(oldest, '^%S+'))
    end
  end
  if redis.call('XLEN', stream) ~= n then
    redis.call('DEL', ids, log)
    redis.call('XTRIM', stream, 'MAXLEN', '=', 1)
    redis.call('RPUSH', log, entry)
    if pid ~= '' then redis.call('HSET', ids, pid, id) end
  end
end
if ttl > 0 then
  for _, k in ipairs(keys) do redis.call('PEXPIRE', k, ttl) end
end
local idjson = ARGV[5]
local answer = pid
if idjson == '' then idjson = '"' .. id .. '"'; answer = id end
if idem then redis.call('SET', idem, answer, 'PX', ARGV[9]) end
local env = ARGV[2]
if keep then env = env .. '"pos":"' .. id .. '",' end
env = env .. '"id":' .. idjson .. ',' .. string.sub(ARGV[3], 2)
redis.call(ARGV[10], ARGV[1], env)
return {answer, 0}
`

var publishScript = newScript(publishSrc)

var bufs = sync.Pool{New: func() any { return new([]byte) }}

// Publish appends ev to channel's history in Redis and publishes it to every
// node's relay, in one round trip, and returns the event's id: ev.ID when
// set, else the history stream's entry id ("<ms>-<seq>", ordered within the
// channel). With history off (History < 0) the id is still a stream id,
// from a stream that keeps no entry. It is [Relay.PublishOnce] without an
// idempotency key.
//
// The id, event name and data must be valid UTF-8 ([ErrNotUTF8]).
func (r *Relay) Publish(ctx context.Context, channel string, ev sse.Event) (string, error) {
	p, err := r.PublishOnce(ctx, channel, ev, "")
	return p.ID, err
}

// PublishOnce is [Relay.Publish] with an idempotency key.
//
// A non-empty key is remembered with the event's id, in the same script
// that appends and publishes it, for IdempotencyWindow: a publish with the
// same key on the same channel within the window publishes nothing and
// answers the first event's id with Duplicate set.
//
// The error says what became of the event. One wrapping
// [actors.ErrOutcomeUnknown] (a timeout or a connection lost after the
// command may have reached Redis) means it may have been taken: retry it
// with the same key. Any other error means it certainly was not: the
// relay is closed, the event is invalid, Redis could not be reached or
// answered with an error (a refusal such as OOM, READONLY, MISCONF or
// NOAUTH; while the write probe meets one, publishes are refused without
// being sent), or ctx ended before the command was sent.
func (r *Relay) PublishOnce(ctx context.Context, channel string, ev sse.Event, key string) (actors.Published, error) {
	if r.closed.Load() {
		return actors.Published{}, ErrClosed
	}
	if err := checkPublish(channel, ev); err != nil {
		return actors.Published{}, fmt.Errorf("redisrelay: publish to %q: %w", channel, err)
	}
	return r.publish(ctx, channel, ev, key)
}

// PublishChecked is [Relay.PublishOnce] for an event a hub has checked
// (actors.Hub.Check, whose rules include the relay's): it implements
// actors.Cluster, and does not check the event again.
func (r *Relay) PublishChecked(ctx context.Context, c actors.Checked, key string) (actors.Published, error) {
	if r.closed.Load() {
		return actors.Published{}, ErrClosed
	}
	return r.publish(ctx, c.Channel(), c.Event(), key)
}

// publish is PublishOnce once the event is known valid.
func (r *Relay) publish(ctx context.Context, channel string, ev sse.Event, key string) (actors.Published, error) {
	if len(key) > MaxKey {
		return actors.Published{}, fmt.Errorf("redisrelay: publish to %q: idempotency key over %d bytes", channel, MaxKey)
	}
	if err := ctx.Err(); err != nil {
		return actors.Published{}, fmt.Errorf("redisrelay: publish to %q: %w", channel, err)
	}
	if p := r.refused[r.part(channel)].Load(); p != nil {
		r.refusals.note(r.cfg.Logger, r.cfg.LogInterval, *p)
		return actors.Published{}, fmt.Errorf("redisrelay: publish to %q: %w: %w", channel, ErrPublishFailing, *p)
	}

	ctx, span := r.startPublish(ctx, channel)
	bp := bufs.Get().(*[]byte)
	keys, args, b := r.publishArgs((*bp)[:0], channel, ev, key)
	traceArgs(ctx, span, args)
	// go-redis writes the arguments before Run returns, so the buffer can
	// go back to the pool afterwards.
	res, err := runOnce(ctx, r.client, publishScript, keys, args...).Slice()
	endPublish(span, err)
	if cap(b) <= 64<<10 {
		*bp = b
		bufs.Put(bp)
	}
	if err != nil {
		err = r.classify(ctx, err)
		r.publishFailed(ctx, err)
		return actors.Published{}, fmt.Errorf("redisrelay: publish to %q: %w", channel, err)
	}
	r.writeWorked()
	if len(res) != 2 {
		// Cannot happen with this script; the event was taken.
		return actors.Published{}, fmt.Errorf("redisrelay: publish to %q: %w: answer %v", channel, actors.ErrOutcomeUnknown, res)
	}
	id, _ := res[0].(string)
	dup, _ := res[1].(int64)
	return actors.Published{ID: id, Duplicate: dup == 1}, nil
}

// publishArgs returns the keys and arguments of publishScript, and the
// buffer b (grown) that the arguments slice.
func (r *Relay) publishArgs(b []byte, channel string, ev sse.Event, key string) ([]string, []any, []byte) {
	b = appendHead(b, channel)
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
	keys := r.historyKeys(channel)
	if key != "" {
		keys = append(keys, r.idemKey(channel, key))
	}
	cmd := "PUBLISH"
	if r.sharded {
		cmd = "SPUBLISH"
	}
	return keys, []any{r.PubSubChannel(channel), b[:nHead], b[nHead:nBody], ev.ID, b[nBody:],
		strconv.Itoa(maxLen), strconv.FormatInt(ttl, 10), keep,
		strconv.FormatInt(r.cfg.IdempotencyWindow.Milliseconds(), 10), cmd}, b
}

// MaxKey is the longest idempotency key accepted, in bytes (the HTTP edge
// takes at most 256).
const MaxKey = 1 << 10

// historyKeys are the keys of channel's history: the stream, the
// publisher-id index and the entry log. Every key of a channel is named
// PREFIX:KIND:CHANNEL…, with the partition's hash tag before CHANNEL on a
// cluster, so that they share one slot.
func (r *Relay) historyKeys(channel string) []string {
	t := r.tag(channel)
	return []string{r.hist + t + channel, r.cfg.Prefix + ":history-ids:" + t + channel, r.cfg.Prefix + ":history-log:" + t + channel}
}

// idemKey is the key that remembers an idempotency key of channel. "|"
// cannot occur in a channel name, so no two (channel, key) pairs share it.
func (r *Relay) idemKey(channel, key string) string {
	return r.cfg.Prefix + ":idem:" + r.tag(channel) + channel + "|" + key
}
