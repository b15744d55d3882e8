package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"sync"

	"github.com/squall-sse/squall/bench/internal/baseline"
)

// pubfloorMain is the least a net/http server can do per publish of the
// many-channels scenario, to set that scenario's ratios against: a publish
// is read by position, not decoded as JSON (it expects the generator's
// {"channel":"…","data":"…"}, data with no escapes), and its frame is
// written and flushed to each subscriber by the publishing request's own
// goroutine, under its channel's lock: no validation, queue, wake-up of
// another goroutine, history or deadline. What is left is net/http's
// request handling and one write(2) per delivery, which any server built
// on net/http pays.
//
//	go run ./bench pubfloor -addr 127.0.0.1:18090 &
//	go run ./bench loadgen -scenario many-channels -conns 10000 -rate 2000 -publishers 8 \
//	    -servers http://127.0.0.1:18090 -pids $(pgrep -f 'bench pubfloor' | tail -1)
func pubfloorMain(args []string) int {
	fs := flag.NewFlagSet("pubfloor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18090", "listen address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := http.ListenAndServe(*addr, newPubFloor()); err != nil {
		fmt.Fprintln(os.Stderr, "pubfloor:", err)
		return 1
	}
	return 0
}

type pubFloor struct {
	mux *http.ServeMux

	mu    sync.Mutex
	chans map[string]*floorChannel
}

type floorChannel struct {
	mu   sync.Mutex
	last uint64
	subs map[*floorSub]struct{}
}

// floorSub is a stream; its writer is used by publishers, under the
// channel's lock, while its own handler waits for done.
type floorSub struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	done chan struct{} // closed by the first publisher whose write failed
	fail sync.Once
}

func newPubFloor() *pubFloor {
	f := &pubFloor{mux: http.NewServeMux(), chans: map[string]*floorChannel{}}
	f.mux.HandleFunc("GET /events", f.events)
	f.mux.HandleFunc("POST /publish", f.publish)
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	f.mux.HandleFunc("GET /healthz", ok)
	f.mux.HandleFunc("GET /readyz", ok)
	f.mux.HandleFunc("GET /debug/memstats", baseline.MemStatsHandler)
	f.mux.HandleFunc("/debug/pprof/", pprof.Index)
	f.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return f
}

func (f *pubFloor) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

func (f *pubFloor) channel(name string) *floorChannel {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.chans[name]
	if ch == nil {
		ch = &floorChannel{subs: map[*floorSub]struct{}{}}
		f.chans[name] = ch
	}
	return ch
}

func (f *pubFloor) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	sub := &floorSub{w: w, rc: rc, done: make(chan struct{})}
	var joined []*floorChannel
	for _, name := range r.URL.Query()["channel"] {
		ch := f.channel(name)
		ch.mu.Lock()
		ch.subs[sub] = struct{}{}
		ch.mu.Unlock()
		joined = append(joined, ch)
	}
	select {
	case <-sub.done:
	case <-r.Context().Done():
	}
	// Leaving takes each lock, so no publisher is writing to w once this
	// handler returns and net/http reuses it.
	for _, ch := range joined {
		ch.mu.Lock()
		delete(ch.subs, sub)
		ch.mu.Unlock()
	}
}

var errFloorBody = errors.New(`want {"channel":"…","data":"…"}`)

// fieldAt returns the string value of "name":"…" in body, unescaped
// strings only.
func fieldAt(body []byte, name string) ([]byte, error) {
	key := `"` + name + `":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return nil, errFloorBody
	}
	v := body[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil, errFloorBody
	}
	return v[:j], nil
}

func (f *pubFloor) publish(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name, err := fieldAt(body, "channel")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	data, err := fieldAt(body, "data")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ch := f.channel(string(name))
	ch.mu.Lock()
	ch.last++
	id := ch.last
	frame := strconv.AppendUint(append(make([]byte, 0, 32+len(data)), "id: "...), id, 10)
	frame = append(append(append(frame, "\ndata: "...), data...), "\n\n"...)
	for sub := range ch.subs {
		if _, err := sub.w.Write(frame); err != nil || sub.rc.Flush() != nil {
			delete(ch.subs, sub)
			sub.fail.Do(func() { close(sub.done) })
		}
	}
	ch.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"id":"%d"}`, id)
}
