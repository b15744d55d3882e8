package redisrelay

// Script hashes, for tests that read SLOWLOG.
var (
	ReplayScriptHash  = replayScript.Hash()
	PublishScriptHash = publishScript.Hash()
)
