package httpedge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// batchAnswer is the answer of POST /publish/batch.
type batchAnswer struct {
	Error    string `json:"error"`
	Index    *int   `json:"index"`
	Accepted int    `json:"accepted"`
	Results  []struct {
		Status    int    `json:"status"`
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
		Error     string `json:"error"`
	} `json:"results"`
}

func postBatch(t *testing.T, url, body string, header http.Header) (int, http.Header, batchAnswer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/publish/batch", strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var a batchAnswer
	require.NoError(t, json.Unmarshal(raw, &a), "the answer is JSON: %s", raw)
	return resp.StatusCode, resp.Header, a
}

// A batch reaches each channel's streams in its order, and each event's
// answer is its own: its id, or that it was a duplicate.
func TestPublishBatch(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	a := s.subscribe(t, "channel=a", nil)
	b := s.subscribe(t, "channel=b", nil)
	batch := `[{"channel":"a","data":"a1"},{"channel":"b","data":{"n":1},"event":"tick"},
		{"channel":"a","data":"a2","id":"given-2","idempotency_key":"k-a2"},{"channel":"b","data":"b2","retry":1500},
		{"channel":"a","data":"a3"}]`
	status, _, ans := postBatch(t, s.srv.URL, batch, nil)
	require.Equal(t, http.StatusAccepted, status, "%+v", ans)
	require.Len(t, ans.Results, 5)
	assert.Equal(t, 5, ans.Accepted)
	assert.Empty(t, ans.Error)
	for i, r := range ans.Results {
		assert.Equal(t, http.StatusAccepted, r.Status, "event %d", i)
		assert.NotEmpty(t, r.ID, "event %d", i)
	}
	assert.Equal(t, "given-2", ans.Results[2].ID)

	got := a.NextN(t, 3)
	assert.Equal(t, []string{"a1", "a2", "a3"}, []string{string(got[0].Data), string(got[1].Data), string(got[2].Data)})
	assert.Equal(t, []string{ans.Results[0].ID, "given-2", ans.Results[4].ID}, []string{got[0].ID, got[1].ID, got[2].ID})
	gotB := b.NextN(t, 2)
	assert.Equal(t, `{"n":1}`, string(gotB[0].Data))
	assert.Equal(t, "tick", gotB[0].Event)
	assert.Equal(t, "b2", string(gotB[1].Data))
	assert.Equal(t, 1500*time.Millisecond, gotB[1].Retry)

	// The same keyed event again is a duplicate, answered with the first id.
	status, _, ans = postBatch(t, s.srv.URL, `[{"channel":"a","data":"a2","idempotency_key":"k-a2"},{"channel":"a","data":"a4"}]`, nil)
	require.Equal(t, http.StatusAccepted, status, "%+v", ans)
	assert.True(t, ans.Results[0].Duplicate)
	assert.Equal(t, "given-2", ans.Results[0].ID)
	a.RequireNext(t, "a4") // a2 was not sent twice
}

// Anything wrong with one event refuses the whole batch, with the event's
// index, before any event is published; so do the batch's own bounds.
func TestPublishBatchRefusedWhole(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{MaxBody: 64 << 10})
	c := s.subscribe(t, "channel=a", nil)
	many := func(n int) string {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = `{"channel":"a","data":1}`
		}
		return "[" + strings.Join(evs, ",") + "]"
	}
	for _, tc := range []struct {
		name, body string
		header     http.Header
		status     int
		index      int // -1: the refusal is the batch's, not an event's
		reason     string
	}{
		{"an event that would inject a line", `[{"channel":"a","data":1},{"channel":"a","data":2,"event":"x\nid: 9"}]`, nil, 400, 1, "event 1"},
		{"a missing data", `[{"channel":"a","data":1},{"channel":"a","data":2},{"channel":"a"}]`, nil, 400, -1, `event 2: missing "data"`},
		{"an unknown field", `[{"channel":"a","data":1,"Channel":"b"}]`, nil, 400, -1, `event 0: unknown field "Channel"`},
		{"a bad idempotency key", `[{"channel":"a","data":1},{"channel":"a","data":1,"idempotency_key":"has space"}]`, nil, 400, 1, "printable ASCII"},
		{"an invalid channel", `[{"channel":"a","data":1},{"channel":"","data":1}]`, nil, 400, 1, "event 1"},
		{"not an array", `{"channel":"a","data":1}`, nil, 400, -1, "a batch body is a JSON array"},
		{"an empty array", `[]`, nil, 400, -1, "at least one event"},
		{"a trailing value", `[{"channel":"a","data":1}] []`, nil, 400, -1, "data after the JSON value"},
		{"a truncated array", `[{"channel":"a","data":1},`, nil, 400, -1, "malformed"},
		{"invalid UTF-8", "[{\"channel\":\"a\",\"data\":\"\xff\"}]", nil, 400, -1, "UTF-8"},
		{"too deep", `[{"channel":"a","data":` + strings.Repeat("[", httpedge.MaxPublishDepth) + strings.Repeat("]", httpedge.MaxPublishDepth) + `}]`, nil, 400, -1, "nested deeper"},
		{"an Idempotency-Key header", `[{"channel":"a","data":1}]`, http.Header{"Idempotency-Key": {"k"}}, 400, -1, "idempotency_key"},
		{"one event over the bound", many(httpedge.MaxBatch + 1), nil, 413, -1, fmt.Sprintf("at most %d events", httpedge.MaxBatch)},
		{"a body over MaxBody", `[{"channel":"a","data":"` + strings.Repeat("x", 64<<10) + `"}]`, nil, 413, -1, "body over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, ans := postBatch(t, s.srv.URL, tc.body, tc.header)
			assert.Equal(t, tc.status, status, "%+v", ans)
			assert.Contains(t, ans.Error, tc.reason)
			assert.Empty(t, ans.Results, "nothing was published")
			if tc.index >= 0 {
				require.NotNil(t, ans.Index)
				assert.Equal(t, tc.index, *ans.Index)
			}
		})
	}
	// Nothing of the refused batches reached the stream: the next event it
	// gets is the one published now.
	status, _, ans := postBatch(t, s.srv.URL, many(httpedge.MaxBatch), nil)
	require.Equal(t, http.StatusAccepted, status, "a batch at the bound passes: %+v", ans.Error)
	assert.Equal(t, httpedge.MaxBatch, ans.Accepted)
	s.mustPublish(t, "a", "marker")
	first := c.Next(t)
	assert.Equal(t, "1", string(first.Data))
	assert.Equal(t, ans.Results[0].ID, first.ID, "the first event the stream got is the first of the batch at the bound")
}

// A token must allow every channel of a batch; one it does not refuses
// the batch whole.
func TestPublishBatchAuth(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{Auth: &httpedge.Auth{Secret: secret}})
	tok := bearer(sign(t, secret, claims("pub", time.Hour, []string{"orders:*"}, []string{"*"})))
	c := s.subscribe(t, "channel=orders:1", tok)
	status, _, ans := postBatch(t, s.srv.URL, `[{"channel":"orders:1","data":1},{"channel":"admin","data":2}]`, tok)
	require.Equal(t, http.StatusForbidden, status)
	require.NotNil(t, ans.Index)
	assert.Equal(t, 1, *ans.Index)
	assert.Contains(t, ans.Error, `"admin"`)
	status, _, _ = postBatch(t, s.srv.URL, `[{"channel":"orders:1","data":1}]`, nil)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, _, ans = postBatch(t, s.srv.URL, `[{"channel":"orders:1","data":"ok"}]`, tok)
	require.Equal(t, http.StatusAccepted, status, "%+v", ans)
	c.RequireNext(t, "ok") // the refused batch's first event never went out
}

// Each event of a batch counts against the publish rate limits; a batch
// larger than a limit's burst could never pass and is refused as too large.
func TestPublishBatchRateLimits(t *testing.T) {
	s, _ := metricsServer(t, actors.Config{}, httpedge.Config{
		PublishLimits: httpedge.PublishLimits{PerAddress: httpedge.Rate{PerSecond: slowRate, Burst: 5}}})
	batch := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(`{"channel":"r","data":1},`, n), ",") + "]"
	}
	status, _, ans := postBatch(t, s.srv.URL, batch(6), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	assert.Contains(t, ans.Error, "over the publish burst of 5 per address")
	// That refusal took the request's token: 4 are left.
	status, _, ans = postBatch(t, s.srv.URL, batch(4), nil)
	require.Equal(t, http.StatusAccepted, status, "%+v", ans)
	status, hdr, ans := postBatch(t, s.srv.URL, batch(1), nil)
	assert.Equal(t, http.StatusTooManyRequests, status, "%+v", ans)
	assert.Equal(t, "1000", hdr.Get("Retry-After"))
	requireMetrics(t, s.srv.URL, map[string]float64{
		`squall_limit_rejections_total{limit="publish_rate_address"}`: 2,
		`squall_publish_requests_total{outcome="accepted"}`:           1,
		`squall_publish_requests_total{outcome="rate_limited"}`:       1,
		`squall_publish_requests_total{outcome="too_large"}`:          1,
	})
}

// In cluster mode a channel whose publish Redis refuses fails alone: the
// answer is 207, each event's result says what happened to it, the other
// channel's events are delivered, and the failed channel's later events
// are not tried, so that what reached it stays a prefix of the batch.
func TestPublishBatchPartialInCluster(t *testing.T) {
	prefix := hostilePrefix(t)
	m := httpedge.NewMetrics()
	node := newClusterNode(t, prefix, actors.Config{Observer: m}, httpedge.Config{Metrics: m})
	good := node.subscribe(t, "channel=good", nil)
	// Redis refuses the bad channel's appends: its history key holds a
	// string, not a stream.
	rdb := hostileRedisClient(t)
	require.NoError(t, rdb.Set(context.Background(), node.relay.StreamKey("bad"), "not a stream", 0).Err())

	status, _, ans := postBatch(t, node.srv.URL, `[{"channel":"good","data":"g1"},{"channel":"bad","data":"b1"},
		{"channel":"good","data":"g2"},{"channel":"bad","data":"b2"}]`, nil)
	require.Equal(t, http.StatusMultiStatus, status, "%+v", ans)
	assert.Equal(t, 2, ans.Accepted)
	assert.Contains(t, ans.Error, "2 of 4 events not accepted")
	require.Len(t, ans.Results, 4)
	assert.Equal(t, http.StatusAccepted, ans.Results[0].Status)
	assert.Equal(t, http.StatusAccepted, ans.Results[2].Status)
	assert.Equal(t, http.StatusServiceUnavailable, ans.Results[1].Status, "%+v", ans.Results[1])
	assert.Contains(t, ans.Results[1].Error, "event not accepted")
	assert.Equal(t, http.StatusServiceUnavailable, ans.Results[3].Status)
	assert.Contains(t, ans.Results[3].Error, "not tried, since event 1 of this channel was not accepted")
	got := good.NextN(t, 2)
	assert.Equal(t, []string{ans.Results[0].ID, ans.Results[2].ID}, []string{got[0].ID, got[1].ID})

	// Nothing accepted, each event certainly not: 503, and the batch may
	// be sent again as it is.
	status, hdr, ans := postBatch(t, node.srv.URL, `[{"channel":"bad","data":"b3"}]`, nil)
	assert.Equal(t, http.StatusServiceUnavailable, status, "%+v", ans)
	assert.Equal(t, "1", hdr.Get("Retry-After"))
	assert.Equal(t, 0, ans.Accepted)
	requireMetrics(t, node.srv.URL, map[string]float64{
		`squall_publish_requests_total{outcome="partial"}`:     1,
		`squall_publish_requests_total{outcome="unavailable"}`: 1,
	})
}

// The batch of docs/http-api.md, as it is written there.
func TestPublishBatchDocExample(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	u1 := s.subscribe(t, "channel=user:1", nil)
	u2 := s.subscribe(t, "channel=user:2", nil)
	// POST /publish/batch
	// Content-Type: application/json
	body := `
[{"channel": "user:1", "data": {"n": 1}, "event": "notify"},
 {"channel": "user:2", "data": "hi", "idempotency_key": "notify-2-7f3a"},
 {"channel": "user:1", "data": {"n": 2}, "event": "notify"}]
`
	status, _, ans := postBatch(t, s.srv.URL, body, http.Header{"Content-Type": {"application/json"}})
	require.Equal(t, http.StatusAccepted, status, "%+v", ans)
	assert.Equal(t, 3, ans.Accepted)
	got := u1.NextN(t, 2)
	assert.Equal(t, []string{`{"n":1}`, `{"n":2}`}, []string{string(got[0].Data), string(got[1].Data)})
	assert.Equal(t, "notify", got[1].Event)
	u2.RequireNext(t, "hi")
}
