//go:build race

package httpedge_test

// raceOn: the race detector makes every byte copied cost; tests that move
// hundreds of megabytes scale down under it.
const raceOn = true
