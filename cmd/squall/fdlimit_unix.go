//go:build unix

package main

import "golang.org/x/sys/unix"

// fdLimit returns the soft limit on open files. The Go runtime has already
// raised it to the hard limit at start on Linux (and up to what the kernel
// allows on macOS), so this is what the process can use. An unlimited or
// absurdly high limit (over 2^30) counts as none.
func fdLimit() (uint64, bool) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	cur := uint64(r.Cur) // an int64 on the BSDs
	if cur > 1<<30 {
		return 0, false
	}
	return cur, true
}
