package httpedge_test

import (
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall/actors"
	"github.com/squall-sse/squall/httpedge"
)

// nginxConf is the proxy configuration docs/proxies.md documents, with a read
// timeout short enough for a test (in production: above the heartbeat, e.g.
// 60s with 15s heartbeats).
const nginxConf = `
daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
    location / {
      proxy_pass http://%[3]s;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout %[4]s;
      %[5]s
    }
  }
}
`

// startNginx runs a real nginx in front of upstream and returns its address;
// extra goes into its location block.
func startNginx(t *testing.T, upstream, readTimeout, extra string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(bin); err != nil {
		require.FailNow(t, "nginx is not installed: run scripts/deps.sh (or make test)")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	conf := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, addr, upstream, readTimeout, extra)), 0o600))
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "nginx did not start: %s", out)
	return addr
}

func TestThroughNginx(t *testing.T) {
	t.Run("events arrive unbuffered and heartbeats outlive the read timeout", func(t *testing.T) {
		s := newHubServer(t, actors.Config{Heartbeat: 200 * time.Millisecond}, httpedge.Config{})
		proxy := startNginx(t, s.srv.Listener.Addr().String(), "1s", "")
		p := &hubServer{srv: &httptest.Server{URL: "http://" + proxy}}
		c := p.subscribeURL(t, "http://"+proxy+"/events?channel=a")
		// A small event arrives through the proxy on its own, without
		// waiting for more data or for the end of the response.
		s.mustPublish(t, "a", "first")
		assert.Equal(t, "first", string(c.Next(t).Data))
		// Three read timeouts of silence apart from heartbeats.
		for beats := 0; beats < 15; {
			select {
			case <-c.Comments:
				beats++
			case <-c.Done:
				require.FailNow(t, "nginx closed the stream despite heartbeats")
			case <-time.After(wait):
				require.FailNow(t, "no heartbeat through nginx")
			}
		}
		s.mustPublish(t, "a", "after the silence")
		assert.Equal(t, "after the silence", string(c.Next(t).Data))
	})
	t.Run("without heartbeats nginx cuts an idle stream", func(t *testing.T) {
		s := newHubServer(t, actors.Config{Heartbeat: -1}, httpedge.Config{})
		proxy := startNginx(t, s.srv.Listener.Addr().String(), "1s", "")
		p := &hubServer{srv: &httptest.Server{URL: "http://" + proxy}}
		c := p.subscribeURL(t, "http://"+proxy+"/events?channel=a")
		c.RequireEnded(t)
	})
	t.Run("the control: nginx that ignores X-Accel-Buffering holds a small event back", func(t *testing.T) {
		// Without the header nginx buffers the response (proxy_buffering
		// is on by default), which is what the hub's header turns off:
		// this shows the header, not luck, gets events through.
		s := newHubServer(t, actors.Config{Heartbeat: -1}, httpedge.Config{})
		proxy := startNginx(t, s.srv.Listener.Addr().String(), "3s", "proxy_ignore_headers X-Accel-Buffering;")
		p := &hubServer{srv: &httptest.Server{URL: "http://" + proxy}}
		c := p.subscribeURL(t, "http://"+proxy+"/events?channel=a")
		s.mustPublish(t, "a", "first")
		select {
		case ev := <-c.Events:
			require.FailNow(t, "the event came through a buffering nginx", "%q", ev.Data)
		case <-time.After(time.Second):
		}
	})
}
