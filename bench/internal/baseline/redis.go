package baseline

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/squall-sse/squall/sse"
)

// publishScript assigns the channel's next id and publishes the event in
// one round trip, so every node sees ids in publish order. The message is
// "ID\nEVENT\nDATA": ids and names hold no LF, data may.
const publishScript = `local id = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], id .. '\n' .. ARGV[2] .. '\n' .. ARGV[3])
return id`

func (s *Server) startRelay() error {
	opt, err := redis.ParseURL(s.cfg.Redis)
	if err != nil {
		return fmt.Errorf("baseline: redis url: %w", err)
	}
	s.rdb = redis.NewClient(opt)
	s.script = redis.NewScript(publishScript)
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	pattern := s.cfg.RedisPrefix + ":ev:*"
	s.ps = s.rdb.PSubscribe(ctx, pattern)
	if _, err := s.ps.Receive(ctx); err != nil {
		s.ps.Close()
		s.rdb.Close()
		return fmt.Errorf("%w: %w", ErrRedisDown, err)
	}
	s.ready.Store(true)
	msgs := s.ps.Channel(redis.WithChannelSize(4096))
	s.relay.Go(func() {
		prefix := s.cfg.RedisPrefix + ":ev:"
		for m := range msgs {
			s.relayMessage(strings.TrimPrefix(m.Channel, prefix), m.Payload)
		}
	})
	return nil
}

func (s *Server) publishRedis(ctx context.Context, name, event string, data []byte) (uint64, error) {
	p := s.cfg.RedisPrefix
	n, err := s.script.Run(ctx, s.rdb, []string{p + ":id:" + name}, p+":ev:"+name, event, data).Int64()
	if err != nil {
		return 0, fmt.Errorf("baseline: redis publish: %w", err)
	}
	return uint64(n), nil
}

func (s *Server) relayMessage(name, payload string) {
	idStr, rest, ok1 := strings.Cut(payload, "\n")
	event, data, ok2 := strings.Cut(rest, "\n")
	id, err := strconv.ParseUint(idStr, 10, 64)
	if !ok1 || !ok2 || err != nil || sse.ValidChannel(name) != nil {
		s.cfg.Logger.Warn("malformed relay message", "channel", name)
		return
	}
	ch := s.channel(name)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.deliver(encode(id, event, []byte(data)), s.cfg.History)
}
