package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  go run ./bench [flags] [scenario ...]   build squall, run the scenarios against it and the baseline, print the table
  go run ./bench loadgen [flags]          the load generator alone, against running servers (prints JSON)
  go run ./bench baseline [flags]         the baseline SSE server alone
  go run ./bench floor [flags]            a bare write loop, the floor under the scale scenario's CPU per delivery
  go run ./bench pubfloor [flags]         a bare publish handler, the floor under the many-channels scenario

scenarios: fanout, many-channels, slow-consumer, reconnect-storm, cluster, capacity, scale (default: all)
run "go run ./bench -h", "go run ./bench loadgen -h" or "go run ./bench baseline -h" for the flags.
`

func main() {
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "loadgen":
			os.Exit(loadgenMain(args[1:]))
		case "baseline":
			os.Exit(baselineMain(args[1:]))
		case "scale-gen":
			os.Exit(scaleGenMain(args[1:]))
		case "floor":
			os.Exit(floorMain(args[1:]))
		case "pubfloor":
			os.Exit(pubfloorMain(args[1:]))
		case "run":
			args = args[1:]
		case "help":
			fmt.Print(usage)
			return
		}
	}
	os.Exit(runMain(args))
}
