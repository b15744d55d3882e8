package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// child is a process the bench started, in its own process group so that
// stopping it also stops anything it started, and with a parent-death
// signal so that it does not outlive a bench that is killed outright.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

// children tracks every live child so that one deferred call stops them
// all, whatever path the bench leaves by.
type children struct {
	mu   sync.Mutex
	set  map[*child]struct{}
	dir  string // where logs go
	echo bool   // copy child stderr to ours
}

func newChildren(dir string, echo bool) *children {
	return &children{set: map[*child]struct{}{}, dir: dir, echo: echo}
}

// start runs path with args. Its stderr (and stdout unless stdout is set)
// goes to a log file in the bench's work dir.
func (cs *children) start(name, path string, args []string, stdout io.Writer) (*child, error) {
	logPath := filepath.Join(cs.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	var errw io.Writer = f
	if cs.echo {
		errw = io.MultiWriter(f, os.Stderr)
	}
	cmd.Stderr = errw
	cmd.Stdout = errw
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	cs.mu.Lock()
	cs.set[c] = struct{}{}
	cs.mu.Unlock()
	go func() {
		c.waitErr = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// tail is the end of the child's log, for error messages.
func (c *child) tail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// stop sends SIGTERM to the child's process group, then SIGKILL after
// grace, and waits for the child.
func (cs *children) stop(c *child, grace time.Duration) {
	if !c.exited() {
		syscall.Kill(-c.pid(), syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			syscall.Kill(-c.pid(), syscall.SIGKILL)
			<-c.done
		}
	}
	// The group may hold grandchildren even after the child exited.
	syscall.Kill(-c.pid(), syscall.SIGKILL)
	cs.mu.Lock()
	delete(cs.set, c)
	cs.mu.Unlock()
}

func (cs *children) stopAll() {
	cs.mu.Lock()
	all := make([]*child, 0, len(cs.set))
	for c := range cs.set {
		all = append(all, c)
	}
	cs.mu.Unlock()
	for _, c := range all {
		cs.stop(c, 3*time.Second)
	}
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// may take it before the server binds it; startServer then fails clearly.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeAddr is a loopback address with a free port; see freePort.
func freeAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(port), nil
}

var errNotReady = errors.New("server never became ready")

// startServer starts a server binary on a free port with the hub's flags
// and waits for GET /readyz to answer 200.
func (cs *children) startServer(ctx context.Context, name, bin string, extra []string, self bool) (*child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	var args []string
	if self {
		args = append(args, "baseline")
	}
	args = append(args, "--addr", addr, "--pprof")
	args = append(args, extra...)
	c, err := cs.start(name, bin, args, nil)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	if err := cs.waitReady(ctx, c, base); err != nil {
		return nil, "", err
	}
	return c, base, nil
}

// waitReady waits for GET base/readyz to answer 200; on failure it has
// stopped c.
func (cs *children) waitReady(ctx context.Context, c *child, base string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if c.exited() {
			return fmt.Errorf("%s exited at start (%v): %s", c.name, c.waitErr, c.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			cs.stop(c, time.Second)
			return fmt.Errorf("%s: %w in 20s: %s", c.name, errNotReady, c.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
