package client_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/squall-sse/squall/client"
)

// BenchmarkNext measures the client's receive path over loopback: a
// server writes batches of 100 events as fast as the client takes them.
// With a cancellable context, each Next also registers and removes a
// context.AfterFunc.
func BenchmarkNext(b *testing.B) {
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, bc := range []struct {
		size int
		ctx  context.Context
		name string
	}{
		{16, context.Background(), "background"},
		{16, cancellable, "cancellable"},
		{1024, context.Background(), "background"},
	} {
		size, ctx := bc.size, bc.ctx
		b.Run(fmt.Sprintf("data=%dB/ctx=%s", size, bc.name), func(b *testing.B) {
			var batch strings.Builder
			for i := range 100 {
				fmt.Fprintf(&batch, "id: %d\nevent: tick\ndata: %s\n\n", i, strings.Repeat("x", size))
			}
			frames := batch.String()
			srv := newBenchServer(b, frames)
			s, err := client.Connect(ctx, srv, client.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			b.SetBytes(int64(len(frames) / 100))
			for b.Loop() {
				if _, err := s.Next(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func newBenchServer(b *testing.B, frames string) string {
	buf := []byte(frames)
	srv := newServerTB(b, func(w http.ResponseWriter, r *http.Request, n int) {
		open(w)
		for r.Context().Err() == nil {
			if _, err := w.Write(buf); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	return srv.URL
}
