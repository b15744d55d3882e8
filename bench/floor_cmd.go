package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// floorMain is the least any Go server can do per delivery of a broadcast,
// to set the scale scenario's figures against: streams are answered with
// a chunked head and kept in a slice, and each GET /broadcast?seq=N writes
// one chunk ("N UNIXNANOS", what scale-gen reads) to every one of them
// from GOMAXPROCS goroutines: no goroutine, queue, deadline or bookkeeping
// per stream. What it costs per delivery is mostly the loopback write(2),
// which also runs the receiving side's TCP input.
//
//	go run ./bench floor -addr 127.0.0.1:18081 -control 127.0.0.1:18082
//	go run ./bench scale-gen -servers http://127.0.0.1:18081 -conns 15000
//	curl 'http://127.0.0.1:18082/broadcast?seq=1'
func floorMain(args []string) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18081", "listen address of the streams")
	control := fs.String("control", "127.0.0.1:18082", "listen address of GET /broadcast?seq=N")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	f := &floor{}
	go f.accept(ln)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /broadcast", f.broadcast)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	if err := http.ListenAndServe(*control, mux); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	return 0
}

type floor struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (f *floor) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go f.serve(c)
	}
}

// serve reads the request head, whatever it asks, and answers a stream.
func (f *floor) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			c.Close()
			return
		}
		if len(line) <= 2 {
			break
		}
	}
	// The head goes out under the lock a broadcast takes to list the
	// streams: a client that has read it, and so counts as ready, is on
	// the list of the next broadcast. Written before the lock, a
	// broadcast fired at once could miss it, and the scale scenario then
	// waits out its timeout for that one stream (seen once at 50,000).
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")); err != nil {
		c.Close()
		return
	}
	f.conns = append(f.conns, c)
}

func (f *floor) broadcast(w http.ResponseWriter, r *http.Request) {
	ev := fmt.Sprintf("data: %s %d\n\n", r.URL.Query().Get("seq"), time.Now().UnixNano())
	chunk := []byte(strconv.FormatInt(int64(len(ev)), 16) + "\r\n" + ev + "\r\n")
	f.mu.Lock()
	conns := f.conns
	f.mu.Unlock()
	var wg sync.WaitGroup
	n := runtime.GOMAXPROCS(0)
	for k := range n {
		wg.Go(func() {
			for i := k; i < len(conns); i += n {
				_, _ = conns[i].Write(chunk)
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(w, "%d\n", len(conns))
}
