package redisrelay

import (
	"context"

	"github.com/squall-sse/squall/sse"
)

// Script hashes, for tests that read SLOWLOG.
var (
	ReplayScriptHash  = replayScript.Hash()
	PublishScriptHash = publishScript.Hash()
)

// Fill publishes evs to channel with the publish script, pipelined, for
// tests that need a large history quickly.
func Fill(ctx context.Context, r *Relay, channel string, evs []sse.Event) error {
	if err := publishScript.Load(ctx, r.client).Err(); err != nil {
		return err
	}
	pipe := r.client.Pipeline()
	for _, ev := range evs {
		keys, args, _ := r.publishArgs(nil, channel, ev, "")
		publishScript.EvalSha(ctx, pipe, keys, args...)
	}
	_, err := pipe.Exec(ctx)
	return err
}
