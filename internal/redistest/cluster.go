// Package redistest starts real Redis Cluster processes for tests: every
// node a redis-server on a free port, joined with redis-cli --cluster
// create. Nothing is cached between runs; each cluster lives in its own
// temporary directory and dies with Stop.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of Masters masters, each with Replicas
// replicas.
type Cluster struct {
	Masters, Replicas int
	dir               string
	mu                sync.Mutex
	nodes             []*Node
}

// Node is one redis-server of a cluster.
type Node struct {
	Port int
	cmd  *exec.Cmd
	args []string
}

// Addr is host:port.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

// StartCluster starts masters×(1+replicas) nodes with a 1 s node timeout
// (so a failover takes about 1–3 s) and waits until the cluster is ok on
// every node. It fails when redis-server or redis-cli is missing (check
// Available first).
func StartCluster(masters, replicas int) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "squall-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Masters: masters, Replicas: replicas, dir: dir}
	n := masters * (1 + replicas)
	ports, err := freePorts(n)
	if err != nil {
		c.Stop()
		return nil, err
	}
	for i, p := range ports {
		nd := &Node{Port: p, args: []string{"--port", strconv.Itoa(p), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)),
			"--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no",
			"--dir", dir, "--cluster-replica-validity-factor", "0", "--repl-diskless-sync", "yes",
			"--repl-diskless-sync-delay", "0"}}
		if err := nd.start(); err != nil {
			c.Stop()
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		if err := waitPing(nd.Addr()); err != nil {
			c.Stop()
			return nil, err
		}
	}
	args := []string{"--cluster", "create"}
	for _, nd := range c.nodes {
		args = append(args, nd.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	if err := c.WaitOK(30 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Available reports whether the binaries are installed.
func Available() bool {
	_, e1 := exec.LookPath("redis-server")
	_, e2 := exec.LookPath("redis-cli")
	return e1 == nil && e2 == nil
}

// URL is the redis+cluster:// URL of the cluster, every node a seed.
func (c *Cluster) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	addrs := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		addrs[i] = nd.Addr()
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// Addrs are the addresses of every node.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.Addr()
	}
	return out
}

// Client is a go-redis cluster client of the cluster; the caller closes it.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
}

// WaitOK waits until every live node reports cluster_state:ok and agrees
// that every slot has a master.
func (c *Cluster) WaitOK(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if last = c.ok(); last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // polling an external process
	}
	return fmt.Errorf("redistest: cluster not ok after %v: %w", limit, last)
}

func (c *Cluster) ok() error {
	c.mu.Lock()
	nodes := append([]*Node(nil), c.nodes...)
	c.mu.Unlock()
	for _, nd := range nodes {
		if nd.cmd == nil {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: nd.Addr(), DialTimeout: time.Second, MaxRetries: -1})
		info, err := rdb.ClusterInfo(context.Background()).Result()
		_ = rdb.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return fmt.Errorf("node %s: %s", nd.Addr(), firstLines(info, 3))
		}
	}
	return nil
}

// MasterOf returns the node that serves key's slot now.
func (c *Cluster) MasterOf(ctx context.Context, key string) (*Node, error) {
	cc := c.Client()
	defer cc.Close()
	m, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return nil, err
	}
	addr := m.Options().Addr
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.Addr() == addr {
			return nd, nil
		}
	}
	return nil, fmt.Errorf("redistest: no node at %s", addr)
}

// Kill kills a node (SIGKILL): its replica takes over after the node
// timeout.
func (c *Cluster) Kill(nd *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd.kill()
}

// Stop kills every node and removes the directory. It is idempotent.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		nd.kill()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
		c.dir = ""
	}
}

func (nd *Node) start() error {
	nd.cmd = exec.Command("redis-server", nd.args...)
	nd.cmd.Stdout, nd.cmd.Stderr = io.Discard, io.Discard
	return nd.cmd.Start()
}

func (nd *Node) kill() {
	if nd.cmd == nil {
		return
	}
	// SIGKILL ends a stopped (SIGSTOP) process too: no SIGCONT needed,
	// and none exists on Windows, where this package must still build.
	_ = nd.cmd.Process.Kill()
	_ = nd.cmd.Wait()
	nd.cmd = nil
}

func waitPing(addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: redis-server at %s does not answer: %w", addr, err)
		}
		time.Sleep(10 * time.Millisecond) // polling an external process
	}
}

// freePorts returns n ports free now. A cluster node also listens on port
// +10000 (the bus), so both must be free.
func freePorts(n int) ([]int, error) {
	var out []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for tries := 0; len(out) < n && tries < 200; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		if p+10000 > 65535 {
			_ = l.Close()
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			_ = l.Close()
			continue
		}
		held = append(held, l, bus)
		out = append(out, p)
	}
	if len(out) < n {
		return nil, errors.New("redistest: no free ports")
	}
	return out, nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " ")
}
