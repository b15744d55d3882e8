package httpedge

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"time"
)

//go:embed web
var webFS embed.FS

// demoCSP lets the demo page load its own script and style and talk to its
// own origin, nothing else: no inline script, no third-party asset.
const demoCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, with its type and a content hash for ETag.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

func loadAsset(name, ctype string) asset {
	b, err := webFS.ReadFile("web/" + name)
	if err != nil {
		panic("httpedge: embedded demo asset missing: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// mountDemo serves the demo page at exactly "/" and its script and style
// under /demo/.
func (s *Server) mountDemo() {
	page := loadAsset("index.html", "text/html; charset=utf-8")
	assets := map[string]asset{
		"app.js":    loadAsset("app.js", "text/javascript; charset=utf-8"),
		"style.css": loadAsset("style.css", "text/css; charset=utf-8"),
	}
	s.route("/{$}", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", demoCSP)
		serveAsset(w, r, "index.html", page)
	})
	s.route("/demo/{file}", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.PathValue("file")]
		if !ok {
			writeError(w, http.StatusNotFound, "no such demo asset")
			return
		}
		serveAsset(w, r, path.Base(r.URL.Path), a)
	})
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string, a asset) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidate every time: a new binary must not be hidden by a cache,
	// and an unchanged one costs a 304.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
