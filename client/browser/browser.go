package browser

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

//go:embed squall.js
var script []byte

//go:embed squall.d.ts
var types []byte

// Paths returns the paths [Handler] serves, for a mux to route to it.
func Paths() []string { return []string{"/squall.js", "/squall.d.ts"} }

type file struct {
	body  []byte
	ctype string
	etag  string
}

func newFile(body []byte, ctype string) file {
	sum := sha256.Sum256(body)
	return file{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

var files = map[string]file{
	"/squall.js":   newFile(script, "text/javascript; charset=utf-8"),
	"/squall.d.ts": newFile(types, "application/typescript; charset=utf-8"),
}

// Handler serves the client at /squall.js and its types at /squall.d.ts, to
// GET and HEAD only, with an ETag: a page revalidates on every load
// (Cache-Control: no-cache), so a new hub's client is never hidden by a
// cache, and an unchanged one costs a 304.
func Handler() http.Handler { return http.HandlerFunc(serve) }

func serve(w http.ResponseWriter, r *http.Request) {
	f, ok := files[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "no such file")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed here: use GET or HEAD")
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == "/squall.js" {
		// Deno and some editors find the types from this header.
		h.Set("X-TypeScript-Types", "/squall.d.ts")
	}
	// A module script from another origin loads only with CORS: the file
	// is public and fetched without credentials, so any origin may read
	// it, unless the hub's CORS layer has already answered for this one.
	if h.Get("Access-Control-Allow-Origin") == "" {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// writeError answers like the rest of the hub's API: {"error": reason}.
func writeError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{reason})
	_, _ = w.Write(append(b, '\n'))
}
