//go:build !unix

package main

// fdLimit reports no limit where there is no RLIMIT_NOFILE (Windows).
func fdLimit() (uint64, bool) { return 0, false }
