package redisrelay

import (
	"context"
	"fmt"
	"runtime"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/actors"
)

// replayScript reads one page of what follows a resume point, in one atomic
// step so that trimming cannot open a gap between finding the point and
// reading after it. Its work is bounded whatever the id: the point is
// found by stream id or through the publisher-id index (a hash lookup),
// never by scanning, and the page is read in stream id order with COUNT,
// in chunks sized so that it reads little more than the byte cap.
//
//	KEYS[1]  the history stream
//	KEYS[2]  the publisher-id index (see publishScript)
//	KEYS[3]  the entry log (see publishScript)
//	ARGV[1]  the resume id (Last-Event-ID), for the first page
//	ARGV[2]  "1" when it is shaped like a stream id
//	ARGV[3]  the age bound in ms (0: none)
//	ARGV[4]  for a later page, the stream id to continue after; else ""
//	ARGV[5]  the page's most events
//	ARGV[6]  the page's most bytes of event bodies (at least one event)
//
// It answers {"found", entries, point id, more (0 or 1)}, {"expired"} or
// {"unknown"}. The resume point is the entry whose stream id is ARGV[1],
// else the most recent entry whose publisher id is ARGV[1] (the index
// keeps the most recent). The stream keeps one entry more than the history
// count, and age trimming keeps one aged-out entry: a client whose last
// event is that oldest entry missed nothing that was dropped, so it
// resumes with everything after it, while every retained event is one of
// the newest History. Entries older than the age bound that have not been
// trimmed yet (nothing was published since) count as gone: if the first
// event after the resume point is one, the client missed it. A later page
// whose point has been trimmed meanwhile is expired: what followed it may
// be gone.
const replaySrc = `
local stream, ids, log = KEYS[1], KEYS[2], KEYS[3]
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local function exists(id)
  return #redis.call('XRANGE', stream, id, id) > 0
end
local point = nil
local first = ARGV[4] == ''
if not first then
  if not exists(ARGV[4]) then return {'expired'} end
  point = ARGV[4]
else
  local last = ARGV[1]
  if ARGV[2] == '1' and exists(last) then
    point = last
  else
    local sid = redis.call('HGET', ids, last)
    if sid and exists(sid) then point = sid end
  end
  if not point then
    if ARGV[2] == '1' then
      -- Older than the oldest retained entry, which the log names without
      -- reading its data (a stream from before the log: read it).
      local oldest = redis.call('LINDEX', log, 0)
      if oldest then
        oldest = string.match(oldest, '^%S+')
      else
        local e = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
        if #e > 0 then oldest = e[1][1] end
      end
      if not oldest or before(last, oldest) then return {'expired'} end
    end
    return {'unknown'}
  end
end
local maxEvents, maxBytes = tonumber(ARGV[5]), tonumber(ARGV[6])
local out, bytes, more = {}, 0, false
local cursor = '(' .. point
local chunk = math.min(4, maxEvents + 1)
while true do
  local got = redis.call('XRANGE', stream, cursor, '+', 'COUNT', chunk)
  for i = 1, #got do
    if #out == maxEvents then more = true; break end
    local f, size = got[i][2], 0
    for j = 1, #f - 1, 2 do
      if f[j] == 'e' then size = #f[j + 1] end
    end
    if #out > 0 and bytes + size > maxBytes then more = true; break end
    out[#out + 1] = got[i]
    bytes = bytes + size
  end
  if more or #got < chunk then break end
  cursor = '(' .. got[#got][1]
  -- Size the next read by what the page still has room for, so the script
  -- copies little beyond the page.
  local room = maxEvents + 1 - #out
  if bytes > 0 then
    room = math.min(room, math.floor((maxBytes - bytes) * #out / bytes) + 1)
  end
  chunk = math.max(room, 1)
end
local ttl = tonumber(ARGV[3])
if first and ttl > 0 and #out > 0 then
  local t = redis.call('TIME')
  local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - ttl
  if tonumber(string.match(out[1][1], '^%d+')) < cutoff then return {'expired'} end
end
local m = 0
if more then m = 1 end
return {'found', out, point, m}
`

var replayScript = newScript(replaySrc)

// Defaults of a [actors.ReplayRequest] page.
const (
	defaultPageEvents = 100
	defaultPageBytes  = 256 << 10
)

// Replay returns one page of the events of req.Channel retained in Redis
// strictly after the resume point, oldest first, each with its stream
// position. It implements actors.Replayer.
//
// The first page's point is req.LastEventID: a stream id (the id Squall
// assigns when the publisher gives none) or a publisher's id, whose most
// recent retained use wins. An id older than everything retained gives
// [actors.ReplayExpired]; an id not in the history gives
// [actors.ReplayUnknown], as does any id when history is off. Events that
// a Python SDK worker published reach no history, so their ids are unknown
// here. A later page continues after req.From; it is expired when that
// event has been trimmed since.
//
// A page holds at most req.MaxEvents events (zero or negative: 100) and at
// most req.MaxBytes bytes of stored event bodies (zero or negative: 256
// KiB), and at least one event whatever its size; More says whether
// retained events follow it.
func (r *Relay) Replay(ctx context.Context, req actors.ReplayRequest) (actors.Replay, error) {
	observed := r.timeReplay()
	channel, lastID := req.Channel, req.LastEventID
	if r.cfg.History < 0 {
		return actors.Replay{Status: actors.ReplayUnknown}, nil
	}
	if r.closed.Load() {
		return actors.Replay{}, ErrClosed
	}
	shaped, from := "0", ""
	if !req.From.IsZero() {
		from = req.From.String()
	} else if _, ok := actors.ParsePos(lastID); ok {
		shaped = "1"
	}
	maxEvents, maxBytes := req.MaxEvents, req.MaxBytes
	if maxEvents <= 0 {
		maxEvents = defaultPageEvents
	}
	if maxBytes <= 0 {
		maxBytes = defaultPageBytes
	}
	ttl := max(r.cfg.HistoryTTL.Milliseconds(), 0)
	keys := r.historyKeys(channel)
	select {
	case r.replays <- struct{}{}:
		defer func() { <-r.replays }()
	case <-ctx.Done():
		return actors.Replay{}, fmt.Errorf("redisrelay: replay %q after %q: waiting for a turn: %w", channel, lastID, ctx.Err())
	}
	res, err := runOnce(ctx, r.client, replayScript, keys, lastID, shaped, strconv.FormatInt(ttl, 10),
		from, strconv.Itoa(maxEvents), strconv.Itoa(maxBytes)).Slice()
	if err != nil {
		return actors.Replay{}, fmt.Errorf("redisrelay: replay %q after %q: %w", channel, lastID, err)
	}
	out, err := r.parseReplay(channel, res)
	if err != nil {
		return actors.Replay{}, fmt.Errorf("redisrelay: replay %q after %q: %w", channel, lastID, err)
	}
	observed(out)
	return out, nil
}

// replayBound is how many replays read Redis at once: half the client's
// pool (per node on a cluster). Without it a storm of resumes (every
// client of a restarted hub coming back with Last-Event-ID) takes every
// connection: replays beyond the pool fail after its short wait (their
// streams end and come back later, a new storm), and publishes, which
// share the pool, are refused with 503 meanwhile. Seen in the bench's
// 100,000-stream runs: 4,865 replays failed with "connection pool
// timeout" and one hub marked Redis unwritable. With the bound, replays
// queue on their own context's deadline and publishes keep half the pool.
func replayBound(c redis.UniversalClient) int {
	size := 0
	switch c := c.(type) {
	case *redis.Client:
		size = c.Options().PoolSize
	case *redis.ClusterClient:
		size = c.Options().PoolSize
	}
	if size <= 0 {
		size = 10 * runtime.GOMAXPROCS(0) // go-redis's default
	}
	return max(size/2, 1)
}

func (r *Relay) parseReplay(channel string, res []any) (actors.Replay, error) {
	if len(res) == 0 {
		return actors.Replay{}, fmt.Errorf("empty answer")
	}
	switch res[0] {
	case "unknown":
		return actors.Replay{Status: actors.ReplayUnknown}, nil
	case "expired":
		return actors.Replay{Status: actors.ReplayExpired}, nil
	case "found":
	default:
		return actors.Replay{}, fmt.Errorf("unexpected answer %v", res[0])
	}
	var entries []any
	if len(res) > 1 {
		entries, _ = res[1].([]any)
	}
	out := actors.Replay{Status: actors.ReplayFound, Events: make([]actors.ReplayEvent, 0, len(entries))}
	if len(res) > 2 {
		point, _ := res[2].(string)
		p, ok := actors.ParsePos(point)
		if !ok {
			return actors.Replay{}, fmt.Errorf("resume point %v", res[2])
		}
		out.Point = p
	}
	if len(res) > 3 {
		m, _ := res[3].(int64)
		out.More = m == 1
	}
	for _, e := range entries {
		ev, err := parseEntry(channel, e)
		if err != nil {
			return actors.Replay{}, err
		}
		out.Events = append(out.Events, ev)
	}
	return out, nil
}

// parseEntry turns one stream entry, [id, [field, value, …]], into an event.
func parseEntry(channel string, e any) (actors.ReplayEvent, error) {
	pair, _ := e.([]any)
	if len(pair) != 2 {
		return actors.ReplayEvent{}, fmt.Errorf("stream entry %v: not [id, fields]", e)
	}
	id, _ := pair[0].(string)
	pos, ok := actors.ParsePos(id)
	if !ok {
		return actors.ReplayEvent{}, fmt.Errorf("stream entry id %v", pair[0])
	}
	fields, _ := pair[1].([]any)
	var given, body string
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		switch k {
		case "i":
			given = v
		case "e":
			body = v
		}
	}
	d, err := decodeEnvelope(channel, []byte(body))
	if err != nil {
		return actors.ReplayEvent{}, fmt.Errorf("stream entry %s: %w", id, err)
	}
	d.ev.ID = given
	if given == "" {
		d.ev.ID = id
	}
	return actors.ReplayEvent{Pos: pos, Event: d.ev}, nil
}
