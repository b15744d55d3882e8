package httpedge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/squall-sse/squall/actors"
)

// MaxBatch bounds the events of one POST /publish/batch (413 above). The
// body is bounded by MaxBody as well.
const MaxBatch = 1000

// batchParallel bounds the channels one batch publishes to at once in
// cluster mode, where each publish waits for Redis (in memory mode, as many
// as there are cores: see publishAll). Each channel's events go one after
// another, in the batch's order.
const batchParallel = 16

// errBatchTooLong is a batch of more than MaxBatch events.
var errBatchTooLong = fmt.Errorf("a batch has at most %d events", MaxBatch)

// batchEvent is one checked event of a batch.
type batchEvent struct {
	c   actors.Checked
	key string
}

// batchResult is what happened to one event of a batch, in the shape of a
// single publish's answer plus its status.
type batchResult struct {
	Status    int    `json:"status"`
	ID        string `json:"id,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Error     string `json:"error,omitempty"`
}

// publishBatch serves POST /publish/batch: a JSON array of publish bodies,
// each with an optional idempotency_key. It costs one request for many
// events, which is most of what a publish costs (see docs/bench.md).
//
// The batch is checked whole before any event is published: a malformed
// or invalid event, a channel the token may not publish on, or a batch
// over the rate limits refuses it all (4xx, with the event's index), so a
// fixed batch can be sent again as it is. Then every event is published:
// a channel's events in the batch's order, different channels at once.
// Once an event of a channel is not accepted, the channel's later events
// in the batch are not tried, so what reached a channel is always a prefix
// of what the batch held for it. The answer lists each event's outcome:
// 202 when every event was accepted, 503 when none was and each certainly
// was not (the whole batch may be sent again), 207 otherwise.
func (s *Server) publishBatch(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.publishAdmitted(w, r)
	if !ok {
		return
	}
	if r.Header.Get("Idempotency-Key") != "" {
		writeError(w, http.StatusBadRequest, `a batch takes no Idempotency-Key header: give each event its "idempotency_key"`)
		return
	}
	raw, status, err := s.readPublish(w, r)
	if err != nil {
		if status == http.StatusRequestEntityTooLarge {
			s.metrics.limitRejected(limitBody)
		}
		writeError(w, status, err.Error())
		return
	}
	bodies, err := parseBatch(raw)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errBatchTooLong) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, err.Error())
		return
	}
	events := make([]batchEvent, len(bodies))
	for i, b := range bodies {
		c, status, err := s.checkPublish(b)
		if err == nil && b.Key != nil {
			if err = validKey(*b.Key); err == nil {
				events[i].key = *b.Key
			} else {
				status = http.StatusBadRequest
			}
		}
		if err != nil {
			writeBatchError(w, status, i, err.Error())
			return
		}
		if claims != nil && !claims.CanPublish(c.Channel()) {
			s.metrics.authFailed(http.StatusForbidden)
			writeBatchError(w, http.StatusForbidden, i, fmt.Sprintf("the token does not allow publish on channel %q", c.Channel()))
			return
		}
		events[i].c = s.traceChecked(r, c)
	}
	if !s.batchRatesAllowed(w, r, claims, len(events)) {
		return
	}
	results := s.publishAll(r.Context(), events)
	if r.Context().Err() != nil {
		return // the publisher left; nobody reads an answer
	}
	writeBatchAnswer(w, results)
}

// batchRatesAllowed takes the rest of a batch's rate tokens: one per
// event, of which the request took one. A batch larger than a limit's
// burst could never pass it and is refused as too large.
func (s *Server) batchRatesAllowed(w http.ResponseWriter, r *http.Request, c *Claims, n int) bool {
	rest := n - 1
	if rest == 0 {
		return true
	}
	type check struct {
		l           *keyedLimiter
		key, limit  string
		reason      string
		description string
	}
	var checks []check
	if l := s.rates.address; l != nil {
		checks = append(checks, check{l, clientIP(r, s.cfg.TrustProxy), limitPublishAddress, "too many publishes from your address", "per address"})
	}
	if l := s.rates.subject; l != nil && c.subject() != "" {
		checks = append(checks, check{l, c.subject(), limitPublishSubject, "too many publishes for your token's subject", "per token subject"})
	}
	for _, ch := range checks {
		if n > ch.l.burst {
			s.metrics.limitRejected(ch.limit)
			writeError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("a batch of %d events is over the publish burst of %d %s: send at most %d at once", n, ch.l.burst, ch.description, ch.l.burst))
			return false
		}
		if !s.rateAllowedN(w, ch.l, ch.key, rest, ch.limit, ch.reason) {
			return false
		}
	}
	return true
}

// parseBatch reads a batch body: a JSON array of 1 to MaxBatch events,
// each read as strictly as a publish body.
func parseBatch(raw []byte) ([]publishBody, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("body is not valid UTF-8")
	}
	d := jsontext.NewDecoder(bytes.NewReader(raw))
	tok, err := d.ReadToken()
	if err != nil {
		return nil, fmt.Errorf("malformed JSON body: %w", err)
	}
	if tok.Kind() != '[' {
		return nil, errors.New("a batch body is a JSON array of events")
	}
	var out []publishBody
	for d.PeekKind() != ']' {
		if len(out) == MaxBatch {
			return nil, errBatchTooLong
		}
		v, err := d.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("event %d: malformed JSON: %w", len(out), err)
		}
		b, err := parsePublishBody(v, batchFields)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", len(out), err)
		}
		out = append(out, b)
	}
	if _, err := d.ReadToken(); err != nil { // the closing ']'
		return nil, fmt.Errorf("malformed JSON body: %w", err)
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return nil, fmt.Errorf("malformed JSON body: data after the JSON value at byte %d", d.InputOffset())
	}
	if len(out) == 0 {
		return nil, errors.New("a batch has at least one event")
	}
	return out, nil
}

// publishAll publishes a checked batch and returns each event's outcome.
func (s *Server) publishAll(ctx context.Context, events []batchEvent) []batchResult {
	var order []string
	groups := map[string][]int{}
	for i, e := range events {
		ch := e.c.Channel()
		if _, ok := groups[ch]; !ok {
			order = append(order, ch)
		}
		groups[ch] = append(groups[ch], i)
	}
	results := make([]batchResult, len(events))
	if len(order) == 1 {
		s.publishGroup(ctx, events, results, groups[order[0]])
		return results
	}
	jobs := make(chan []int)
	var wg sync.WaitGroup
	parallel := batchParallel
	if s.cfg.Hub.Config().Cluster == nil {
		// In memory mode a publish runs its channel's turn on the
		// caller's goroutine and never waits on I/O: more goroutines
		// than cores only start and grow more stacks.
		parallel = runtime.GOMAXPROCS(0)
	}
	for range min(parallel, len(order)) {
		wg.Go(func() {
			for g := range jobs {
				s.publishGroup(ctx, events, results, g)
			}
		})
	}
	for _, ch := range order {
		jobs <- groups[ch]
	}
	close(jobs)
	wg.Wait()
	return results
}

// publishGroup publishes one channel's events in order, up to the first
// that is not accepted; the rest are not tried.
func (s *Server) publishGroup(ctx context.Context, events []batchEvent, results []batchResult, idx []int) {
	for k, i := range idx {
		p, err := s.cfg.Hub.PublishChecked(ctx, events[i].c, events[i].key)
		if err == nil {
			results[i] = batchResult{Status: http.StatusAccepted, ID: p.ID, Duplicate: p.Duplicate}
			continue
		}
		results[i] = refusedResult(err)
		for _, j := range idx[k+1:] {
			results[j] = batchResult{Status: http.StatusServiceUnavailable,
				Error: fmt.Sprintf("event not accepted: not tried, since event %d of this channel was not accepted", i)}
		}
		return
	}
}

// refusedResult is what a single publish would answer for err.
func refusedResult(err error) batchResult {
	if status, ok := publishRefusal(err); ok {
		return batchResult{Status: status, Error: "event not accepted: " + err.Error()}
	}
	if errors.Is(err, actors.ErrOutcomeUnknown) {
		return batchResult{Status: http.StatusGatewayTimeout,
			Error: "event outcome unknown (it may have been accepted; retry with the same idempotency_key): " + err.Error()}
	}
	return batchResult{Status: http.StatusServiceUnavailable, Error: "event not accepted: " + err.Error()}
}

// writeBatchAnswer answers a batch that was published: 202 when every
// event was accepted, 503 when each certainly was not, 207 otherwise.
func writeBatchAnswer(w http.ResponseWriter, results []batchResult) {
	accepted, unavailable := 0, 0
	for _, r := range results {
		switch r.Status {
		case http.StatusAccepted:
			accepted++
		case http.StatusServiceUnavailable:
			unavailable++
		}
	}
	answer := struct {
		Error    string        `json:"error,omitempty"`
		Accepted int           `json:"accepted"`
		Results  []batchResult `json:"results"`
	}{Accepted: accepted, Results: results}
	status := http.StatusAccepted
	if accepted < len(results) {
		answer.Error = fmt.Sprintf("%d of %d events not accepted: see each result", len(results)-accepted, len(results))
		status = http.StatusMultiStatus
		if unavailable == len(results) {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "1")
		}
	}
	writeJSON(w, status, answer)
}

// writeBatchError refuses a whole batch because of its event index.
func writeBatchError(w http.ResponseWriter, status, index int, reason string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
		Index int    `json:"index"`
	}{fmt.Sprintf("event %d: %s", index, reason), index})
}
