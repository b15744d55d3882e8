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

const adminSecret = "admin-secret-of-at-least-16-bytes"

func newAdminServer(t *testing.T, cfg actors.Config) *hubServer {
	return newHubServer(t, cfg, httpedge.Config{Auth: &httpedge.Auth{Secret: secret}, AdminSecret: adminSecret})
}

// adminCall sends an admin request with the admin secret and returns the
// status and the raw JSON answer.
func adminCall(t *testing.T, s *hubServer, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s: %s", method, path, raw)
	return resp.StatusCode, raw
}

type presenceAnswer struct {
	Channels []actors.ChannelPresence `json:"channels"`
	Next     string                   `json:"next"`
	Scope    string                   `json:"scope"`
}

func subscribers(t *testing.T, s *hubServer, channel string) int {
	t.Helper()
	code, raw := adminCall(t, s, http.MethodGet, "/admin/channels/"+channel, "")
	require.Equal(t, http.StatusOK, code, "GET /admin/channels/%s: %s", channel, raw)
	var out actors.ChannelPresence
	require.NoError(t, json.Unmarshal(raw, &out))
	require.Equal(t, channel, out.Channel)
	return out.Subscribers
}

func presencePage(t *testing.T, s *hubServer, query string) presenceAnswer {
	t.Helper()
	code, raw := adminCall(t, s, http.MethodGet, "/admin/channels?"+query, "")
	require.Equal(t, http.StatusOK, code, "GET /admin/channels?%s: %s", query, raw)
	var out presenceAnswer
	require.NoError(t, json.Unmarshal(raw, &out))
	assert.Equal(t, "node", out.Scope)
	return out
}

// userStream opens a stream on channels with a token whose subject is sub.
func (s *hubServer) userStream(t *testing.T, sub string, channels ...string) *client {
	t.Helper()
	tok := sign(t, secret, claims(sub, time.Hour, nil, []string{"*"}))
	return s.subscribe(t, "channel="+strings.Join(channels, "&channel="), bearer(tok))
}

func (s *hubServer) publishAs(t *testing.T, channel, data string) {
	t.Helper()
	s.mustPublishAuth(t, sign(t, secret, claims("backend", time.Hour, []string{"*"}, nil)), channel, data)
}

// TestAdminPresenceCounts: the counts follow streams as they join and
// leave, a stream on two channels counting on each.
func TestAdminPresenceCounts(t *testing.T) {
	s := newAdminServer(t, actors.Config{})
	// The polling asks the hub (the admin API is rate-limited); the
	// answer is then read once through the API.
	eventually := func(channel string, want int) {
		t.Helper()
		require.Eventually(t, func() bool {
			n, err := s.hub.Subscribers(context.Background(), channel)
			return err == nil && n == want
		}, wait, 5*time.Millisecond, "%s has %d subscribers", channel, want)
		assert.Equal(t, want, subscribers(t, s, channel), "GET /admin/channels/%s", channel)
	}
	assert.Equal(t, 0, subscribers(t, s, "room:1"), "a channel nobody is on")
	a := s.userStream(t, "u1", "room:1")
	s.userStream(t, "u2", "room:1")
	c := s.userStream(t, "u3", "room:1", "room:2")
	eventually("room:1", 3)
	eventually("room:2", 1)
	assert.Equal(t, []actors.ChannelPresence{{Channel: "room:1", Subscribers: 3}, {Channel: "room:2", Subscribers: 1}},
		presencePage(t, s, "").Channels)
	assert.Equal(t, []actors.ChannelPresence{{Channel: "room:2", Subscribers: 1}},
		presencePage(t, s, "prefix=room:2").Channels)

	a.Close()
	eventually("room:1", 2)
	c.Close()
	eventually("room:1", 1)
	eventually("room:2", 0)
}

// TestAdminPresencePages: a page holds at most limit channels, in name
// order; following next visits every channel once.
func TestAdminPresencePages(t *testing.T) {
	s := newAdminServer(t, actors.Config{})
	var want []actors.ChannelPresence
	for i := range 5 {
		name := fmt.Sprintf("ch:%d", 4-i)
		s.userStream(t, "u", name)
		want = append([]actors.ChannelPresence{{Channel: name, Subscribers: 1}}, want...)
	}
	s.userStream(t, "u", "other")
	require.Eventually(t, func() bool {
		p, err := s.hub.Presence(context.Background(), actors.PresenceQuery{Prefix: "ch:", Limit: actors.MaxPresenceLimit})
		return err == nil && len(p.Channels) == 5
	}, wait, 5*time.Millisecond)

	var got []actors.ChannelPresence
	pages, after := 0, ""
	for {
		p := presencePage(t, s, "prefix=ch:&limit=2&after="+after)
		require.LessOrEqual(t, len(p.Channels), 2, "page %d over the limit", pages)
		got = append(got, p.Channels...)
		pages++
		if p.Next == "" {
			break
		}
		after = p.Next
		require.Less(t, pages, 5, "pages never end")
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 3, pages)
	assert.Len(t, presencePage(t, s, "limit=1").Channels, 1, "limit=1 is the lower bound")
}

// TestAdminDisconnectBySubject: the subject's streams get every event they
// were sent, then squall-closed with the reason and the retry hint, then
// EOF; another subject's streams, on the same channel, stay.
func TestAdminDisconnectBySubject(t *testing.T) {
	obs := newCloseCounter()
	s := newAdminServer(t, actors.Config{Observer: obs})
	banned1 := s.userStream(t, "mallory", "a")
	banned2 := s.userStream(t, "mallory", "b", "a")
	other := s.userStream(t, "alice", "a")
	s.publishAs(t, "a", "before")

	code, raw := adminCall(t, s, http.MethodPost, "/admin/disconnect",
		`{"subject":"mallory","reason":"banned: spam","retry_ms":30000}`)
	require.Equal(t, http.StatusOK, code, "%s", raw)
	assert.JSONEq(t, `{"disconnected":2,"scope":"node"}`, string(raw))

	for i, c := range []*client{banned1, banned2} {
		assert.Equal(t, "before", string(c.Next(t).Data), "stream %d: the event sent before", i)
		last := c.Next(t)
		assert.Equal(t, actors.ClosedEvent, last.Event, "stream %d", i)
		assert.JSONEq(t, `{"reason":"banned: spam","retry_ms":30000}`, string(last.Data), "stream %d", i)
		c.RequireEnded(t)
		assert.Equal(t, io.EOF, c.Err(), "stream %d ends with a clean EOF", i)
		assert.Equal(t, 30*time.Second, <-c.Retries, "stream %d: the retry hint", i)
	}
	require.Eventually(t, func() bool { return obs.count(actors.Disconnected) == 2 }, wait, time.Millisecond)

	s.publishAs(t, "a", "after")
	assert.Equal(t, "before", string(other.Next(t).Data))
	assert.Equal(t, "after", string(other.Next(t).Data), "another subject's stream stays")
	require.Eventually(t, func() bool {
		n, err := s.hub.Subscribers(context.Background(), "a")
		return err == nil && n == 1
	}, wait, 5*time.Millisecond)

	code, raw = adminCall(t, s, http.MethodPost, "/admin/disconnect", `{"subject":"mallory"}`)
	require.Equal(t, http.StatusOK, code, "%s", raw)
	assert.JSONEq(t, `{"disconnected":0,"scope":"node"}`, string(raw), "nothing left to close")
}

// TestAdminDisconnectByChannel: every stream on the channel goes, with the
// default reason; a stream on other channels stays.
func TestAdminDisconnectByChannel(t *testing.T) {
	s := newAdminServer(t, actors.Config{})
	on1 := s.userStream(t, "u1", "room:9")
	on2 := s.userStream(t, "u2", "x", "room:9")
	off := s.userStream(t, "u1", "x")
	code, raw := adminCall(t, s, http.MethodPost, "/admin/disconnect", `{"channel":"room:9"}`)
	require.Equal(t, http.StatusOK, code, "%s", raw)
	assert.JSONEq(t, `{"disconnected":2,"scope":"node"}`, string(raw))
	for _, c := range []*client{on1, on2} {
		ev := c.Next(t)
		assert.Equal(t, actors.ClosedEvent, ev.Event)
		assert.JSONEq(t, fmt.Sprintf(`{"reason":%q,"retry_ms":%d}`, httpedge.DefaultDisconnectReason,
			httpedge.DefaultDisconnectRetry.Milliseconds()), string(ev.Data))
		c.RequireEnded(t)
	}
	s.publishAs(t, "x", "still here")
	assert.Equal(t, "still here", string(off.Next(t).Data))
}

// TestAdminSubjectAtBound: a subject of MaxSubject bytes is matched; one
// byte more is refused.
func TestAdminSubjectAtBound(t *testing.T) {
	s := newAdminServer(t, actors.Config{})
	long := strings.Repeat("s", httpedge.MaxSubject)
	c := s.userStream(t, long, "a")
	code, raw := adminCall(t, s, http.MethodPost, "/admin/disconnect", `{"subject":"`+long+`"}`)
	require.Equal(t, http.StatusOK, code, "%s", raw)
	assert.JSONEq(t, `{"disconnected":1,"scope":"node"}`, string(raw))
	assert.Equal(t, actors.ClosedEvent, c.Next(t).Event)
	code, raw = adminCall(t, s, http.MethodPost, "/admin/disconnect", `{"subject":"`+long+`s"}`)
	assert.Equal(t, http.StatusBadRequest, code, "%s", raw)
}

// TestAdminOff: without a secret the routes do not exist, as any unknown
// path, whatever the request carries.
func TestAdminOff(t *testing.T) {
	s := newHubServer(t, actors.Config{}, httpedge.Config{})
	for _, path := range []string{"/admin/channels", "/admin/channels/a", "/admin/disconnect", "/nonexistent"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := do(t, method, s.srv.URL+path, `{"subject":"u"}`, bearer(adminSecret))
			assert.Equal(t, http.StatusNotFound, r.status, "%s %s", method, path)
		}
	}
}

// TestAdminRefusals: a wrong or missing secret is 401 and nothing it
// carried is echoed; bad input is 400 (413 for a big body) with a reason.
func TestAdminRefusals(t *testing.T) {
	s := newAdminServer(t, actors.Config{})
	wrong := "wrong-secret-wrong-secret-wrong"
	for _, h := range []http.Header{nil, bearer(wrong), bearer(adminSecret + "x"), {"Authorization": {adminSecret}}} {
		req, err := http.NewRequest(http.MethodGet, s.srv.URL+"/admin/channels", nil)
		require.NoError(t, err)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "header %v", h)
		assert.Contains(t, string(raw), `"error"`)
		assert.NotContains(t, string(raw), "secret-")
		assert.Equal(t, `Bearer realm="squall-admin"`, resp.Header.Get("WWW-Authenticate"))
	}

	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"limit zero", "GET", "/admin/channels?limit=0", "", 400},
		{"limit over the bound", "GET", fmt.Sprintf("/admin/channels?limit=%d", actors.MaxPresenceLimit+1), "", 400},
		{"limit not a number", "GET", "/admin/channels?limit=ten", "", 400},
		{"prefix with a space", "GET", "/admin/channels?prefix=a%20b", "", 400},
		{"after with a glob", "GET", "/admin/channels?after=a*", "", 400},
		{"channel with a newline", "GET", "/admin/channels/a%0Ab", "", 400},
		{"empty channel", "GET", "/admin/channels/", "", 400},
		{"channel over the bound", "GET", "/admin/channels/" + strings.Repeat("c", 257), "", 400},
		{"subject and channel", "POST", "/admin/disconnect", `{"subject":"u","channel":"a"}`, 400},
		{"neither", "POST", "/admin/disconnect", `{"reason":"x"}`, 400},
		{"empty subject", "POST", "/admin/disconnect", `{"subject":""}`, 400},
		{"bad channel", "POST", "/admin/disconnect", `{"channel":"a\nb"}`, 400},
		{"reason with a newline", "POST", "/admin/disconnect", `{"subject":"u","reason":"a\nevent: x"}`, 400},
		{"reason over the bound", "POST", "/admin/disconnect", `{"subject":"u","reason":"` + strings.Repeat("r", httpedge.MaxDisconnectReason+1) + `"}`, 400},
		{"reason at the bound", "POST", "/admin/disconnect", `{"subject":"u","reason":"` + strings.Repeat("r", httpedge.MaxDisconnectReason) + `"}`, 200},
		{"negative retry", "POST", "/admin/disconnect", `{"subject":"u","retry_ms":-1}`, 400},
		{"retry over the bound", "POST", "/admin/disconnect", fmt.Sprintf(`{"subject":"u","retry_ms":%d}`, httpedge.MaxDisconnectRetry.Milliseconds()+1), 400},
		{"unknown field", "POST", "/admin/disconnect", `{"subject":"u","ban":true}`, 400},
		{"duplicate key", "POST", "/admin/disconnect", `{"subject":"u","subject":"v"}`, 400},
		{"not JSON", "POST", "/admin/disconnect", `subject=u`, 400},
		{"body over 4 KiB", "POST", "/admin/disconnect", `{"subject":"` + strings.Repeat("u", 5000) + `"}`, 413},
		{"GET on disconnect", "GET", "/admin/disconnect", "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A server each: the table is longer than the admin burst.
			s := newAdminServer(t, actors.Config{})
			code, raw := adminCall(t, s, tt.method, tt.path, tt.body)
			require.Equal(t, tt.want, code, "%s", raw)
			if code >= 400 {
				var e map[string]string
				require.NoError(t, json.Unmarshal(raw, &e))
				assert.NotEmpty(t, e["error"])
			}
		})
	}
}

// TestAdminRateLimited: a burst past the admin bucket gets 429 with
// Retry-After, and guessing with a wrong secret does not use up the right
// secret's rate.
func TestAdminRateLimited(t *testing.T) {
	s := newAdminServer(t, actors.Config{})
	guesses := map[int]int{}
	for range 30 {
		guesses[do(t, http.MethodGet, s.srv.URL+"/admin/channels", "", bearer("guess-guess-guess-guess")).status]++
	}
	assert.Positive(t, guesses[http.StatusTooManyRequests], "guesses are limited: %v", guesses)
	assert.Positive(t, guesses[http.StatusUnauthorized], "the first guesses are answered: %v", guesses)
	code, raw := adminCall(t, s, http.MethodGet, "/admin/channels", "")
	assert.Equal(t, http.StatusOK, code, "the right secret still gets in: %s", raw)

	// The bucket refills 10 a second: a loop of requests passes it as long
	// as each takes under 100 ms, however loaded the machine.
	var limited *reply
	for range 1000 {
		r := do(t, http.MethodGet, s.srv.URL+"/admin/channels", "", bearer(adminSecret))
		if r.status == http.StatusTooManyRequests {
			limited = &r
			break
		}
		require.Equal(t, http.StatusOK, r.status)
	}
	require.NotNil(t, limited, "a loop of requests passes the bucket")
	assert.NotEmpty(t, limited.header.Get("Retry-After"))
	assert.NotEmpty(t, limited.err)
}
