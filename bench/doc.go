// Command bench measures the squall hub against a baseline net/http SSE
// server in the same run and prints one table per scenario with the ratio
// squall / baseline. See README.md beside this file for the method.
//
//	go run ./bench -quick                 # CI: every scenario, small N
//	go run ./bench -out FILE.md           # full mode: 10,000 streams
//	go run ./bench loadgen -h             # the generator alone
//	go run ./bench baseline -h            # the baseline server alone
//
// The same binary is the orchestrator, the load generator ("loadgen") and
// the baseline ("baseline"): the orchestrator runs itself for the last two,
// so the generator and each server are separate processes, and builds
// ./cmd/squall with the go command.
//
// # Concurrency
//
// The orchestrator runs one scenario against one server at a time; each
// child process it starts is tracked until it has been stopped and waited
// for.
//
// # Shutdown
//
// Every child runs in its own process group with a parent-death signal.
// Whatever way the orchestrator leaves (done, error, SIGINT, SIGTERM), a
// deferred call sends SIGTERM to each group, then SIGKILL after a grace
// period, and waits. The exit status is non-zero when a run is broken
// (a process failed, events were lost or duplicated, nothing was
// delivered), never because of a figure.
package main
