package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"
)

// MemStats is what GET /debug/memstats answers, measured right after
// runtime.GC() in the server.
type MemStats struct {
	HeapInuse  int64 `json:"heap_inuse"`
	StackInuse int64 `json:"stack_inuse"`
	Sys        int64 `json:"sys"`
	Goroutines int64 `json:"goroutines"`
}

// serverMem is the memory of the servers under test, summed over them.
type serverMem struct {
	RSS        int64 // bytes, VmRSS
	HeapStack  int64 // bytes, heap in use + stack in use
	Stack      int64 // bytes, stack in use
	Goroutines int64
}

func fetchMemStats(ctx context.Context, client *http.Client, base string) (MemStats, error) {
	var ms MemStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/memstats", nil)
	if err != nil {
		return ms, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return ms, fmt.Errorf("loadgen: memstats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ms, fmt.Errorf("loadgen: memstats: status %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ms); err != nil {
		return ms, fmt.Errorf("loadgen: memstats: %w", err)
	}
	return ms, nil
}

// procRSS reads VmRSS from /proc/PID/status, in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("loadgen: rss: %w", err)
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 1 {
			break
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadgen: rss: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("loadgen: rss: no VmRSS in /proc/%d/status", pid)
}

// clockTick is USER_HZ, which Linux fixes at 100 for /proc on every
// architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU reads user+system CPU time of pid from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("loadgen: cpu: %w", err)
	}
	// The command name may hold spaces and parentheses; fields restart
	// after the last ')'. utime and stime are fields 14 and 15, that is
	// the 12th and 13th after the name.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("loadgen: cpu: malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("loadgen: cpu: malformed /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("loadgen: cpu: malformed /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the new soft limit.
func RaiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("loadgen: getrlimit: %w", err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("loadgen: setrlimit: %w", err)
		}
	}
	return rl.Cur, nil
}
