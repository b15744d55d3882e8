package httpedge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"golang.org/x/time/rate"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/sse"
)

// The admin API (Config.AdminSecret): presence and disconnects, on this
// node, or over the cluster with Config.ClusterAdmin.
//
//	GET  /admin/channels?prefix=P&after=C&limit=N  a page of channels with subscriber counts
//	GET  /admin/channels/{channel}                  one channel's subscriber count
//	POST /admin/disconnect                          close the streams of a subject or a channel
//
// Without a secret the routes do not exist (404, like any unknown path).

// MinAdminSecret is the shortest admin secret New accepts, in bytes.
const MinAdminSecret = 16

// Bounds of the admin API's input.
const (
	// DefaultPresenceLimit is the page size of GET /admin/channels
	// without a limit; actors.MaxPresenceLimit is the largest.
	DefaultPresenceLimit = 100
	// MaxSubject bounds the subject of a disconnect, in bytes.
	MaxSubject = actors.MaxDisconnectSubject
	// MaxDisconnectReason bounds the reason shown to disconnected clients,
	// in bytes.
	MaxDisconnectReason = actors.MaxDisconnectReason
	// DefaultDisconnectRetry is the reconnect hint of a disconnect without
	// retry_ms; MaxDisconnectRetry is the largest accepted.
	DefaultDisconnectRetry = time.Minute
	MaxDisconnectRetry     = actors.MaxDisconnectRetry
	// maxAdminBody bounds a disconnect body, in bytes.
	maxAdminBody = 4 << 10
	// adminTimeout bounds the wait for the actors' answer.
	adminTimeout = 5 * time.Second
)

// DefaultDisconnectReason is the reason clients see when the request gives
// none.
const DefaultDisconnectReason = "disconnected by the operator"

// admin serves the admin routes. Its two token buckets keep requests with
// a wrong secret (a guesser) from using up the rate of the right one.
type admin struct {
	hub     *actors.Hub
	cluster ClusterAdmin // nil: node-local
	secret  [sha256.Size]byte
	ok      *rate.Limiter // requests with the right secret
	bad     *rate.Limiter // requests without it
}

// ClusterAdmin answers the admin API over a cluster: redisrelay.Admin is
// one. Its answers carry what they are based on (actors.ClusterSnapshot).
type ClusterAdmin interface {
	Presence(ctx context.Context, q actors.PresenceQuery) (actors.ClusterPresencePage, error)
	Subscribers(ctx context.Context, channel string) (actors.ClusterSubscribers, error)
	Disconnect(ctx context.Context, m actors.DisconnectMatch, n actors.DisconnectNotice) (actors.ClusterDisconnect, error)
}

func newAdmin(hub *actors.Hub, secret string) *admin {
	if len(secret) < MinAdminSecret {
		panic(fmt.Sprintf("httpedge: Config.AdminSecret shorter than %d bytes", MinAdminSecret))
	}
	return &admin{hub: hub, secret: sha256.Sum256([]byte(secret)),
		ok: rate.NewLimiter(10, 20), bad: rate.NewLimiter(1, 5)}
}

func (s *Server) mountAdmin() {
	a := newAdmin(s.cfg.Hub, s.cfg.AdminSecret)
	a.cluster = s.cfg.ClusterAdmin
	s.route("/admin/channels", http.MethodGet, a.guard(a.channels))
	s.route("/admin/channels/{channel...}", http.MethodGet, a.guard(a.channel))
	s.route("/admin/disconnect", http.MethodPost, a.guard(a.disconnect))
}

// guard checks the secret and the rate. The secret is compared as SHA-256
// digests in constant time, so neither its bytes nor its length leak
// through timing; it is never echoed, nor is what the client sent.
func (a *admin) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], a.secret[:]) != 1 || !bearer {
			if !a.bad.Allow() {
				writeBusy(w, http.StatusTooManyRequests, time.Second, "too many admin requests")
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="squall-admin"`)
			writeError(w, http.StatusUnauthorized, "admin requests need Authorization: Bearer <admin secret>")
			return
		}
		if !a.ok.Allow() {
			writeBusy(w, http.StatusTooManyRequests, time.Second, "too many admin requests")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
		defer cancel()
		h(w, r.WithContext(ctx))
	}
}

// presenceBody is the answer of GET /admin/channels.
type presenceBody struct {
	Channels []actors.ChannelPresence `json:"channels"`
	Next     string                   `json:"next,omitempty"`
	Scope    string                   `json:"scope"`
}

func (a *admin) channels(w http.ResponseWriter, r *http.Request) {
	q, err := presenceQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if a.cluster != nil {
		page, err := a.cluster.Presence(r.Context(), q)
		if err != nil {
			a.failed(w, err)
			return
		}
		writeJSON(w, http.StatusOK, clusterPresenceBody{
			presenceBody: presenceBody{Channels: page.Channels, Next: page.Next, Scope: "cluster"},
			snapshot:     snapshotOf(page.ClusterSnapshot)})
		return
	}
	page, err := a.hub.Presence(r.Context(), q)
	if err != nil {
		a.failed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, presenceBody{Channels: page.Channels, Next: page.Next, Scope: "node"})
}

// snapshot says which report a cluster-wide answer sums: the interval it
// was taken in, how long intervals are, how many nodes reported.
type snapshot struct {
	AsOf       time.Time `json:"as_of"`
	IntervalMS int64     `json:"interval_ms"`
	Nodes      int       `json:"nodes"`
}

func snapshotOf(s actors.ClusterSnapshot) snapshot {
	return snapshot{AsOf: s.AsOf.UTC(), IntervalMS: s.Interval.Milliseconds(), Nodes: s.Nodes}
}

type clusterPresenceBody struct {
	presenceBody
	snapshot
}

// presenceQuery reads prefix, after and limit. A prefix or a cursor is a
// channel name or a start of one, so the same check applies.
func presenceQuery(r *http.Request) (actors.PresenceQuery, error) {
	v := r.URL.Query()
	q := actors.PresenceQuery{Prefix: v.Get("prefix"), After: v.Get("after"), Limit: DefaultPresenceLimit}
	for _, p := range []struct{ name, value string }{{"prefix", q.Prefix}, {"after", q.After}} {
		if p.value == "" {
			continue
		}
		if err := sse.ValidChannel(p.value); err != nil {
			return q, fmt.Errorf("invalid %s: %w", p.name, err)
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > actors.MaxPresenceLimit {
			return q, fmt.Errorf("limit must be an integer from 1 to %d", actors.MaxPresenceLimit)
		}
		q.Limit = n
	}
	return q, nil
}

func (a *admin) channel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("channel")
	if err := sse.ValidChannel(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if a.cluster != nil {
		c, err := a.cluster.Subscribers(r.Context(), name)
		if err != nil {
			a.failed(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			actors.ChannelPresence
			Scope string `json:"scope"`
			snapshot
		}{actors.ChannelPresence{Channel: name, Subscribers: c.Subscribers}, "cluster", snapshotOf(c.ClusterSnapshot)})
		return
	}
	n, err := a.hub.Subscribers(r.Context(), name)
	if err != nil {
		a.failed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		actors.ChannelPresence
		Scope string `json:"scope"`
	}{actors.ChannelPresence{Channel: name, Subscribers: n}, "node"})
}

// disconnectBody is the JSON body of POST /admin/disconnect. Pointers tell
// a missing field from a zero one.
type disconnectBody struct {
	Subject *string `json:"subject"`
	Channel *string `json:"channel"`
	Reason  *string `json:"reason"`
	RetryMS *int64  `json:"retry_ms"`
}

func (a *admin) disconnect(w http.ResponseWriter, r *http.Request) {
	match, notice, err := decodeDisconnect(w, r)
	if err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, err.Error())
		return
	}
	if a.cluster != nil {
		d, err := a.cluster.Disconnect(r.Context(), match, notice)
		if err != nil {
			a.failed(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"disconnected": d.Disconnected, "disconnected_here": d.Here,
			"nodes_acknowledged": d.Acknowledged, "nodes_expected": d.Expected, "scope": "cluster"})
		return
	}
	n, err := a.hub.Disconnect(r.Context(), match, notice)
	if err != nil {
		a.failed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"disconnected": n, "scope": "node"})
}

func decodeDisconnect(w http.ResponseWriter, r *http.Request) (actors.DisconnectMatch, actors.DisconnectNotice, error) {
	var (
		m actors.DisconnectMatch
		n = actors.DisconnectNotice{Reason: DefaultDisconnectReason, Retry: DefaultDisconnectRetry}
	)
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return m, n, fmt.Errorf("body over %d bytes: %w", maxAdminBody, err)
		}
		return m, n, fmt.Errorf("reading body: %v", err)
	}
	// JSON v2 refuses what encoding/json would take with a guess: invalid
	// UTF-8, a duplicate or differently cased member, trailing data.
	var b disconnectBody
	if err := jsonv2.Unmarshal(raw, &b, jsonv2.RejectUnknownMembers(true)); err != nil {
		return m, n, fmt.Errorf("malformed JSON body: %v", err)
	}
	if (b.Subject == nil) == (b.Channel == nil) {
		return m, n, errors.New(`give exactly one of "subject" and "channel"`)
	}
	if b.Subject != nil {
		if *b.Subject == "" || len(*b.Subject) > MaxSubject {
			return m, n, fmt.Errorf(`"subject" must be 1 to %d bytes`, MaxSubject)
		}
		m.Subject = *b.Subject
	}
	if b.Channel != nil {
		if err := sse.ValidChannel(*b.Channel); err != nil {
			return m, n, err
		}
		m.Channel = *b.Channel
	}
	if b.Reason != nil {
		if err := (actors.DisconnectNotice{Reason: *b.Reason}).Validate(); err != nil {
			return m, n, err
		}
		n.Reason = *b.Reason
	}
	if b.RetryMS != nil {
		d := time.Duration(*b.RetryMS) * time.Millisecond
		if *b.RetryMS < 0 || *b.RetryMS > MaxDisconnectRetry.Milliseconds() {
			return m, n, fmt.Errorf(`"retry_ms" must be 0 to %d`, MaxDisconnectRetry.Milliseconds())
		}
		n.Retry = d
	}
	return m, n, nil
}

// failed answers a hub that could not: draining (503), too slow (504), or
// Redis failing in cluster mode (503).
func (a *admin) failed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, actors.ErrClosed):
		writeBusy(w, http.StatusServiceUnavailable, time.Second, "hub closed")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		writeError(w, http.StatusGatewayTimeout, "no answer from the hub: "+err.Error())
	default:
		writeBusy(w, http.StatusServiceUnavailable, time.Second, "cluster admin failed: "+err.Error())
	}
}
