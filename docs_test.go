package squall_test

import (
	"bufio"
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/internal/redistest"
	"github.com/squall-sse/squall/internal/ssetest"
)

// checkedDocs are the Markdown files whose links must resolve.
func checkedDocs(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("docs/*.md")
	require.NoError(t, err)
	require.NotEmpty(t, docs, "docs/ has pages")
	return append([]string{"README.md", "RELIABILITY.md", "bench/README.md"}, docs...)
}

// mdLine is one line of a Markdown file outside fenced code, with inline
// code spans blanked so that a `[x](y)` shown as code is not a link.
type mdLine struct {
	n    int
	text string // code spans blanked
	raw  string
}

var inlineCode = regexp.MustCompile("`[^`]*`")

// fence is one fenced code block: the line of its opening fence, the line
// before that, and its content.
type fence struct {
	line   int
	before string
	body   []string
}

func parseMarkdown(t *testing.T, path string) (prose []mdLine, fences []fence) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	var open *fence
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "```") {
			if open == nil {
				before := ""
				if i > 0 {
					before = strings.TrimSpace(lines[i-1])
				}
				open = &fence{line: i + 1, before: before}
			} else {
				fences = append(fences, *open)
				open = nil
			}
			continue
		}
		if open != nil {
			open.body = append(open.body, l)
			continue
		}
		prose = append(prose, mdLine{i + 1, inlineCode.ReplaceAllString(l, "``"), l})
	}
	require.Nil(t, open, "%s: a code fence opened at line %d is never closed", path, lineOf(open))
	return prose, fences
}

func lineOf(f *fence) int {
	if f == nil {
		return 0
	}
	return f.line
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinksResolve: every relative link in the README, docs/,
// RELIABILITY.md and bench/README.md names a file that exists and, with a
// #fragment into Markdown, a heading that exists.
func TestDocsLinksResolve(t *testing.T) {
	checked := 0
	for _, doc := range checkedDocs(t) {
		prose, _ := parseMarkdown(t, doc)
		for _, l := range prose {
			for _, m := range mdLink.FindAllStringSubmatch(l.text, -1) {
				target := m[1]
				if u, err := url.Parse(target); err == nil && u.Scheme != "" {
					continue // http(s), mailto: not ours to check
				}
				file, frag, _ := strings.Cut(target, "#")
				path := doc
				if file != "" {
					path = filepath.Join(filepath.Dir(doc), file)
				}
				checked++
				_, err := os.Stat(path)
				if !assert.NoError(t, err, "%s:%d: link %q", doc, l.n, target) || frag == "" {
					continue
				}
				if strings.HasSuffix(path, ".md") {
					assert.Contains(t, anchors(t, path), frag, "%s:%d: link %q: no such heading in %s", doc, l.n, target, path)
				}
			}
		}
	}
	assert.Greater(t, checked, 20, "links checked")
}

// anchors returns the GitHub anchors of a Markdown file's headings.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	prose, _ := parseMarkdown(t, path)
	out := map[string]bool{}
	for _, l := range prose {
		if !strings.HasPrefix(l.raw, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(l.raw, "#")))
		var slug strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				slug.WriteByte('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				slug.WriteRune(r)
			}
		}
		out[slug.String()] = true
	}
	return out
}

var exercisedBy = regexp.MustCompile(`^<!-- exercised-by: ((?:Test|Example)\w*) -->$`)

// TestDocsCodeBlocksAreExercised: every fenced block in the README and
// docs/ is preceded by <!-- exercised-by: NAME -->, NAME is a Test or
// Example function of a _test.go file here, and every line of the block
// appears in that file, so no block shows what no test runs.
func TestDocsCodeBlocksAreExercised(t *testing.T) {
	funcs := testFuncs(t)
	docs, err := filepath.Glob("docs/*.md")
	require.NoError(t, err)
	blocks := 0
	for _, doc := range append([]string{"README.md"}, docs...) {
		_, fences := parseMarkdown(t, doc)
		for _, f := range fences {
			blocks++
			m := exercisedBy.FindStringSubmatch(f.before)
			if !assert.NotNil(t, m, "%s:%d: the line before the block must be <!-- exercised-by: TestOrExampleName -->, not %q", doc, f.line, f.before) {
				continue
			}
			files := funcs[m[1]]
			if !assert.NotEmpty(t, files, "%s:%d: no func %s in any _test.go file", doc, f.line, m[1]) {
				continue
			}
			// Several packages may have an ExampleNew: one of them holds
			// every line.
			missing := map[string]string{}
			for _, file := range files {
				src, err := os.ReadFile(file)
				require.NoError(t, err)
				for _, l := range f.body {
					if l = strings.TrimSpace(l); l != "" && !strings.Contains(string(src), l) {
						missing[file] = l
						break
					}
				}
				if _, ok := missing[file]; !ok {
					missing = nil
					break
				}
			}
			assert.Empty(t, missing, "%s:%d: the block has lines that no file with func %s holds (file: first missing line)", doc, f.line, m[1])
		}
	}
	assert.GreaterOrEqual(t, blocks, 5, "code blocks checked")
}

// testFuncs maps each Test and Example function of the module's _test.go
// files to the files that declare one of that name.
func testFuncs(t *testing.T) map[string][]string {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Example)\w*)\(`)
	out := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
				out[m[1]] = append(out[m[1]], path)
			}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// The README's two commands are Makefile targets that do what it says:
// make run starts the hub, make test runs the race suite, and CI runs the
// test one.
func TestReadmeCommands(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		require.FailNow(t, "make is not installed")
	}
	for _, tt := range []struct{ line, target, does string }{
		{"make run    # the hub, in memory, on :8080", "run", "go run ./cmd/squall"},
		{"make test   # the whole test suite, race detector on", "test", "go test -race -count=1 ./..."},
	} {
		out, err := exec.Command("make", "-n", tt.target).CombinedOutput()
		require.NoError(t, err, "make -n %s: %s", tt.target, out)
		assert.Contains(t, string(out), tt.does, "%q runs %s", tt.line, tt.does)
	}
	ci, err := os.ReadFile(".ci/run")
	require.NoError(t, err)
	assert.Contains(t, string(ci), "\nmake test\n", ".ci/run runs the README's test command")
}

// The curl tour, run with curl against a real hub: the commands are the
// README's, with localhost:8080 replaced by the test server and the
// documented id by the one the hub assigned.
func TestCurlTour(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		require.FailNow(t, "curl is not installed: run scripts/deps.sh")
	}
	// The README's three blocks, as they are.
	const (
		tour = `# watch a channel (leave it running)
curl -N 'http://localhost:8080/events?channel=orders'

# publish to it, from another terminal
curl -X POST localhost:8080/publish -H 'Content-Type: application/json' \
  -d '{"channel":"orders","data":{"orderId":"abc","status":"paid"},"event":"order_update"}'
# → 202 {"id":"1795879329722-0"}`
		printed = `id: 1795879329722-0
event: order_update
data: {"orderId":"abc","status":"paid"}`
		resume = `curl -N -H 'Last-Event-ID: 1795879329722-0' 'http://localhost:8080/events?channel=orders'`
		docID  = "1795879329722-0"
	)
	var cmds []string // the tour's commands, continuation lines joined
	for l := range strings.SplitSeq(strings.ReplaceAll(tour, "\\\n", ""), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	require.Len(t, cmds, 2, "the tour: a watcher and a publish")
	watch, publish := cmds[0], cmds[1]
	answer := regexp.MustCompile(`# → (\d+) (\{.*\})`).FindStringSubmatch(tour)
	require.NotNil(t, answer, "the tour shows the publish's answer")

	b, err := squall.New(squall.Config{})
	require.NoError(t, err)
	srv := httptest.NewServer(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		assert.NoError(t, b.Shutdown(ctx))
		srv.Close()
	})
	host := strings.TrimPrefix(srv.URL, "http://")
	sh := func(ctx context.Context, cmd string) *exec.Cmd {
		return exec.CommandContext(ctx, "sh", "-c", strings.ReplaceAll(cmd, "localhost:8080", host))
	}
	lines := func(ctx context.Context, cmd string) <-chan string {
		c := sh(ctx, cmd)
		out, err := c.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, c.Start(), "%s", cmd)
		ch := make(chan string, 64)
		go func() {
			defer close(ch)
			for sc := bufio.NewScanner(out); sc.Scan(); {
				ch <- sc.Text()
			}
		}()
		t.Cleanup(func() { _ = c.Wait() })
		return ch
	}
	frame := func(ch <-chan string) string {
		t.Helper()
		var got []string
		for {
			select {
			case l, ok := <-ch:
				require.True(t, ok, "the watcher ended after %q", got)
				if l == "" {
					return strings.Join(got, "\n")
				}
				got = append(got, l)
			case <-time.After(wait):
				require.FailNow(t, "no event", "after %q", got)
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher := lines(ctx, watch)
	require.Eventually(t, func() bool { return b.Hub().OpenStreams() == 1 }, wait, 10*time.Millisecond, "the watcher subscribed")

	out, err := sh(ctx, publish+` -w ' %{http_code}'`).Output()
	require.NoError(t, err, "%s", publish)
	got := regexp.MustCompile(`^\{"id":"([^"]+)"\}\n (\d+)$`).FindStringSubmatch(string(out))
	require.NotNil(t, got, "the publish's answer: %q", out)
	id := got[1]
	assert.Equal(t, answer[1], got[2], "status")
	assert.Equal(t, strings.ReplaceAll(answer[2], docID, id), strings.TrimSpace(strings.TrimSuffix(string(out), got[2])), "body")
	assert.Equal(t, strings.ReplaceAll(printed, docID, id), frame(watcher), "what the watcher prints")

	// Resume from the first event: the one published since comes first.
	_, err = b.Publish(ctx, "orders", "since")
	require.NoError(t, err)
	resumed := lines(ctx, strings.ReplaceAll(resume, docID, id))
	assert.Contains(t, frame(resumed), "data: since", "the resumed stream starts with what was missed")
	cancel()
}

// The envelope page's PUBLISH, sent with a Redis client (the prefix made
// unique), reaches a stream as the page says.
func TestEnvelopeDocPublish(t *testing.T) {
	const (
		cmd  = `PUBLISH sse:orders '{"data": {"id": "abc", "status": "paid"}, "event": "order_update", "id": null, "retry": null}'`
		want = `event: order_update
data: {"id":"abc","status":"paid"}` + "\n\n"
	)
	prefix := newPrefix(t)
	_, srv := mounted(t, squall.Config{RedisURL: sharedRedis, RedisPrefix: prefix})
	c := ssetest.Subscribe(t, srv.URL+"/sse/events?channel=orders", ssetest.Options{Frames: true})

	channel, payload, ok := strings.Cut(strings.TrimPrefix(cmd, "PUBLISH "), " ")
	require.True(t, ok)
	rdb := redistest.Client(t, sharedRedis)
	channel = prefix + strings.TrimPrefix(channel, "sse")
	// A plain PUBLISH is not kept in the history: it reaches only the
	// subscriptions Redis has already confirmed, so wait for the hub's.
	require.Eventually(t, func() bool {
		n, err := rdb.PubSubNumSub(t.Context(), channel).Result()
		return err == nil && n[channel] > 0
	}, wait, 5*time.Millisecond, "the hub subscribed to %s", channel)
	require.NoError(t, rdb.Publish(t.Context(), channel, strings.Trim(payload, "'")).Err())
	assert.Equal(t, want, c.NextFrame(t))
}

var flagName = regexp.MustCompile("`--([a-z0-9-]+)`")

// docs/flags.md lists exactly the binary's flags, with the defaults
// squall -h prints.
func TestFlagsDocMatchesTheBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "squall")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/squall").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	help, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 0 or 2 by Go version

	binary := map[string]string{} // name → default as -h prints it ("" if none)
	name := ""
	for l := range strings.SplitSeq(string(help), "\n") {
		if f, ok := strings.CutPrefix(l, "  -"); ok {
			name, _, _ = strings.Cut(f, " ")
			binary[name] = ""
		} else if i := strings.LastIndex(l, "(default "); i >= 0 && name != "" {
			binary[name] = strings.Trim(strings.TrimSuffix(l[i+len("(default "):], ")"), `"`)
		}
	}
	require.Contains(t, binary, "addr", "squall -h lists flags: %s", help)

	prose, _ := parseMarkdown(t, "docs/flags.md")
	documented := map[string]bool{}
	for _, l := range prose {
		cells := strings.Split(l.raw, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`--") {
			continue
		}
		names := flagName.FindAllStringSubmatch(cells[1], -1)
		for _, f := range names {
			documented[f[1]] = true
			def, ok := binary[f[1]]
			if !assert.True(t, ok, "docs/flags.md documents --%s, which the binary does not have", f[1]) {
				continue
			}
			// A plain `value` is a default to compare; "none", "off",
			// "auto" and rows of two flags are read by people only.
			doc := strings.TrimSpace(cells[2])
			if v, plain := strings.CutPrefix(doc, "`"); plain && strings.HasSuffix(v, "`") && len(names) == 1 {
				assert.True(t, sameDefault(strings.TrimSuffix(v, "`"), def), "--%s: docs say %s, squall -h says %q", f[1], doc, def)
			}
		}
	}
	for f := range binary {
		assert.True(t, documented[f], "--%s is a flag of the binary missing from docs/flags.md", f)
	}
}

func sameDefault(doc, bin string) bool {
	if doc == bin {
		return true
	}
	a, errA := time.ParseDuration(doc)
	b, errB := time.ParseDuration(bin)
	return errA == nil && errB == nil && a == b
}
