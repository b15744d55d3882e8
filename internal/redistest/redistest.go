// Package redistest gives tests a key prefix of their own on the shared
// redis-server (127.0.0.1:6379), which every test may use but none may
// flush: the prefix keeps tests running at the same time apart, and its
// keys are deleted at cleanup.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// SharedURL is the redis-server every machine running the suite has
// (scripts/deps.sh starts it); tests that kill or restart Redis start their
// own instead.
const SharedURL = "redis://127.0.0.1:6379/0"

// Client is a plain go-redis client for url, closed at cleanup.
func Client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	require.NoError(t, err, "redis.ParseURL(%q)", url)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Prefix returns a prefix ("squalltest-<random>") no other test uses and
// deletes every key under it on the Redis at url at cleanup.
func Prefix(t testing.TB, url string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "squalltest-" + hex.EncodeToString(b[:])
	// The client lives only during the cleanup, so that a test checking
	// for leaked goroutines before its cleanup does not see it.
	t.Cleanup(func() {
		opt, err := redis.ParseURL(url)
		require.NoError(t, err)
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		ctx := context.Background()
		for iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator(); iter.Next(ctx); {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}
