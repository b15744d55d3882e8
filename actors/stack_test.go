package actors

import "testing"

// BenchmarkStackGrowth is the cost growStack saves a connection actor's
// mailbox run: a fresh goroutine that goes about 3 KB deep over twenty
// frames, as a flush does through net/http, grows its stack either deep in
// that path (copying and unwinding the frames above it) or before it, near
// the top. Run it with GODEBUG=adaptivestackstart=0, as cmd/squall runs.
func BenchmarkStackGrowth(b *testing.B) {
	for _, tc := range []struct {
		name string
		grow bool
	}{{"grown deep in the call", false}, {"grown at the start", true}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			done := make(chan int)
			for b.Loop() {
				go func() {
					if tc.grow {
						growStack(0)
					}
					done <- descend(20)
				}()
				<-done
			}
		})
	}
}

// descend is a call chain of n frames of about 130 bytes each.
//
//go:noinline
func descend(n int) int {
	var pad [96]byte
	pad[n%len(pad)] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return descend(n-1) + int(pad[n%len(pad)])
}
