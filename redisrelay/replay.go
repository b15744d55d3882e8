package redisrelay

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/actors"
)

// replayScript reads what follows a resume point, in one atomic step so
// that trimming cannot open a gap between finding the point and reading
// after it.
//
//	KEYS[1]  the history stream
//	ARGV[1]  the resume id (Last-Event-ID)
//	ARGV[2]  "1" when it is shaped like a stream id
//	ARGV[3]  the age bound in ms (0: none)
//	ARGV[4]  how many entries to scan for a publisher's id
//
// It answers {"found", entries, point id}, {"expired"} or {"unknown"}. The resume point
// is the entry whose stream id is ARGV[1], else the newest entry whose
// publisher id (field "i") is ARGV[1]. The stream keeps one entry more than
// the history count, and age trimming keeps one aged-out entry: a client
// whose last event is that oldest entry missed nothing that was dropped, so
// it resumes with everything after it, while every retained event is one
// of the newest History. Entries older than the age bound that have not
// been trimmed yet (nothing was published since) count as gone: if the
// first event after the resume point is one, the client missed it.
const replaySrc = `
local key, last = KEYS[1], ARGV[1]
local ttl = tonumber(ARGV[3])
local cutoff = nil
if ttl > 0 then
  local t = redis.call('TIME')
  cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - ttl
end
local function answer(point, after)
  if cutoff and #after > 0 and tonumber(string.match(after[1][1], '^%d+')) < cutoff then
    return {'expired'}
  end
  return {'found', after, point}
end
if ARGV[2] == '1' and #redis.call('XRANGE', key, last, last) > 0 then
  return answer(last, redis.call('XRANGE', key, '(' .. last, '+'))
end
local rev = redis.call('XREVRANGE', key, '+', '-', 'COUNT', ARGV[4])
for i = 1, #rev do
  local f = rev[i][2]
  if f[1] == 'i' and f[2] == last then
    local after = {}
    for j = i - 1, 1, -1 do after[#after + 1] = rev[j] end
    return answer(rev[i][1], after)
  end
end
if ARGV[2] == '1' and #redis.call('XREVRANGE', key, last, '-', 'COUNT', 1) == 0 then
  return {'expired'}
end
return {'unknown'}
`

var replayScript = redis.NewScript(replaySrc)

// Replay returns the events of channel retained in Redis strictly after the
// event whose id is lastID, oldest first, each with its stream position. It
// implements actors.Replayer.
//
// lastID may be a stream id (the id Squall assigns when the publisher gives
// none) or a publisher's id, looked up from the newest entry back. An id
// older than everything retained gives [actors.ReplayExpired]; an id not in
// the history gives [actors.ReplayUnknown], as does any id when history is
// off. Events that a Python SDK worker published reach no history, so their
// ids are unknown here.
//
// TODO(issue 14): page by req.MaxEvents and req.MaxBytes, continue from
// req.From.
func (r *Relay) Replay(ctx context.Context, req actors.ReplayRequest) (actors.Replay, error) {
	channel, lastID := req.Channel, req.LastEventID
	if r.cfg.History < 0 {
		return actors.Replay{Status: actors.ReplayUnknown}, nil
	}
	if r.closed.Load() {
		return actors.Replay{}, ErrClosed
	}
	shaped := "0"
	if _, ok := actors.ParsePos(lastID); ok {
		shaped = "1"
	}
	ttl := max(r.cfg.HistoryTTL.Milliseconds(), 0)
	res, err := replayScript.Run(ctx, r.client, []string{r.hist + channel},
		lastID, shaped, strconv.FormatInt(ttl, 10), strconv.Itoa(r.cfg.History+1)).Slice()
	if err != nil {
		return actors.Replay{}, fmt.Errorf("redisrelay: replay %q after %q: %w", channel, lastID, err)
	}
	out, err := r.parseReplay(channel, res)
	if err != nil {
		return actors.Replay{}, fmt.Errorf("redisrelay: replay %q after %q: %w", channel, lastID, err)
	}
	return out, nil
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
