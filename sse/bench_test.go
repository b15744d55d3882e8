package sse

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

var (
	benchSmall = Event{ID: "1234567", Event: "order_update", Data: []byte(`{"orderId":"abc","status":"paid"}`)}
	benchKiB   = Event{ID: "1234567", Event: "log", Data: []byte(strings.Repeat(strings.Repeat("x", 63)+"\n", 16))}
)

func BenchmarkAppendEvent(b *testing.B) {
	for _, bc := range []struct {
		name string
		ev   Event
	}{
		{"small", benchSmall},
		{"1KiB-16-lines", benchKiB},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf, err := AppendEvent(nil, bc.ev)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = AppendEvent(buf[:0], bc.ev)
			}
		})
	}
}

func BenchmarkParserNext(b *testing.B) {
	for _, bc := range []struct {
		name string
		ev   Event
	}{
		{"small", benchSmall},
		{"1KiB-16-lines", benchKiB},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const events = 1000
			var stream []byte
			for range events {
				stream, _ = AppendEvent(stream, bc.ev)
				stream = append(stream, Keepalive...)
			}
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			r := bytes.NewReader(stream)
			n := 0
			for b.Loop() {
				r.Reset(stream)
				p := NewParser(r)
				for {
					_, err := p.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
