package redisrelay

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		raw, master string
		kind        backendKind
		want        string
	}{
		{"redis://127.0.0.1:6379/2", "", kindSingle, "redis://127.0.0.1:6379/2"},
		{"rediss://u:p@h:6380/0", "", kindSingle, "rediss://u:p@h:6380/0"},
		{"unix:///tmp/r.sock", "", kindSingle, "unix:///tmp/r.sock"},
		{"redis+cluster://h1:7000,h2:7001", "", kindCluster, "redis://h1:7000?addr=h2%3A7001"},
		{"rediss+cluster://u:p@h1:7000,h2:7001,h3:7002?dial_timeout=2s", "", kindCluster,
			"rediss://u:p@h1:7000?addr=h2%3A7001&addr=h3%3A7002&dial_timeout=2s"},
		{"redis://h1:7000,h2:7001/0", "", kindCluster, "redis://h1:7000?addr=h2%3A7001"},
		{"redis+cluster://h1:7000", "", kindCluster, "redis://h1:7000"},
		{"redis://u:p@s1:26379,s2:26379/1", "mymaster", kindSentinel, "redis://u:p@s1:26379/1?addr=s2%3A26379&master_name=mymaster"},
		{"redis://s1:26379", "mymaster", kindSentinel, "redis://s1:26379?master_name=mymaster"},
	} {
		kind, got, err := parseURL(tc.raw, tc.master)
		require.NoError(t, err, tc.raw)
		assert.Equal(t, tc.kind, kind, tc.raw)
		assert.Equal(t, tc.want, got, tc.raw)
	}
	for _, tc := range []struct{ raw, master string }{
		{"redis://h1:7000,h2:7001/3", ""},     // a cluster has only db 0
		{"redis+cluster://h1:7000,", ""},      // empty host
		{"redis+cluster://h1:7000", "m"},      // Sentinel and cluster at once
		{"http://h1:7000", "m"},               // not Redis
		{"redis://h1:7000,h2:7001?x=%zz", ""}, // bad query
	} {
		_, _, err := parseURL(tc.raw, tc.master)
		assert.Error(t, err, tc.raw)
	}
}

func TestPartitionTagsSpreadOverTheSlots(t *testing.T) {
	for _, n := range []int{1, 3, 16, 64} {
		tags := partitionTags(n)
		require.Len(t, tags, n)
		for i, tag := range tags {
			s := int(crc16(tag) % slots)
			assert.GreaterOrEqual(t, s, i*slots/n, "tag %q", tag)
			assert.Less(t, s, (i+1)*slots/n, "tag %q", tag)
		}
	}
	// CRC16/XMODEM as Redis Cluster uses it (CLUSTER KEYSLOT foo = 12182).
	assert.Equal(t, 12182, int(crc16("foo")%slots))
}
