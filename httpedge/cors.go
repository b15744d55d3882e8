package httpedge

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// corsMaxAge is how long a browser may cache a preflight answer, in
// seconds: long enough to save a round trip per publish, short enough that
// a changed origin list takes effect soon (Chromium caps it at 7200).
const corsMaxAge = 600

// corsAllowHeaders are the request headers a cross-origin caller may send:
// a JSON body, a bearer token, and the resume id of fetch-based SSE
// clients (some also send Cache-Control).
const corsAllowHeaders = "Content-Type, Authorization, Last-Event-ID, Cache-Control"

var errOrigin = errors.New(`httpedge: an origin is "*" or scheme://host[:port], without path, query or fragment`)

// ValidOrigin checks one entry of Config.CORSOrigins.
func ValidOrigin(origin string) error {
	if origin == "*" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" ||
		u.Fragment != "" || u.User != nil || strings.HasSuffix(origin, "/") {
		return fmt.Errorf("invalid origin %q: %w", origin, errOrigin)
	}
	return nil
}

// cors answers preflights and marks the responses to allowed origins.
// A listed origin gets credentials (the auth cookie rides along); "*"
// lets any other origin read responses, without credentials. Any other
// origin gets no CORS header at all, so its browser hides the response.
type cors struct {
	origins map[string]bool // lower case, as browsers send them
	any     bool
}

func newCORS(origins []string) *cors {
	c := &cors{origins: map[string]bool{}}
	for _, o := range origins {
		if err := ValidOrigin(o); err != nil {
			panic(err)
		}
		if o == "*" {
			c.any = true
		} else {
			c.origins[strings.ToLower(o)] = true
		}
	}
	return c
}

func (c *cors) enabled() bool { return c.any || len(c.origins) > 0 }

// preflightMethods is the one method each API path answers cross-origin.
var preflightMethods = map[string]string{"/publish": http.MethodPost, "/publish/batch": http.MethodPost, "/events": http.MethodGet}

func (c *cors) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Every answer depends on Origin, with "*" too (no Origin, no CORS
		// header; a listed origin gets itself back; others get nothing): a
		// shared cache must not give one origin's answer to another.
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		credentials := c.origins[strings.ToLower(origin)]
		allowed := credentials || c.any
		method, api := preflightMethods[r.URL.Path]
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" && api {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if !allowed {
				writeError(w, http.StatusForbidden, "origin not allowed: it is not in the hub's --cors-origin list")
				return
			}
			c.allowOrigin(h, origin, credentials)
			h.Set("Access-Control-Allow-Methods", method)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			c.allowOrigin(h, origin, credentials)
			h.Set("Access-Control-Expose-Headers", "Retry-After")
		}
		next.ServeHTTP(w, r)
	})
}

func (c *cors) allowOrigin(h http.Header, origin string, credentials bool) {
	if credentials {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		return
	}
	h.Set("Access-Control-Allow-Origin", "*")
}

// newCrossOrigin builds the check that keeps other sites' pages from
// publishing through a visitor's browser (CSRF): a plain form can POST a
// JSON-looking text/plain body, and would carry the auth cookie. Listed
// origins are trusted; "*" is handled by [Server.crossOriginRefused].
func newCrossOrigin(origins []string) *http.CrossOriginProtection {
	p := http.NewCrossOriginProtection()
	for _, o := range origins {
		if o != "*" {
			if err := p.AddTrustedOrigin(strings.ToLower(o)); err != nil {
				panic(err)
			}
		}
	}
	return p
}

// crossOriginRefused says why a publish from a browser on another origin
// is refused, or returns nil. Requests without Origin or Sec-Fetch-Site
// (curl, backends) and same-origin ones pass. With "*" listed, any origin
// may publish, but not with a token from the cookie (or a request that
// Auth.Authenticate admitted): "*" never grants credentials.
func (s *Server) crossOriginRefused(r *http.Request, src tokenSource) error {
	err := s.crossOrigin.Check(r)
	if err == nil || (s.cors.any && src != fromCookie && src != fromHook) {
		return nil
	}
	return fmt.Errorf("cross-origin publish refused: %q is not in the hub's allowed origins", r.Header.Get("Origin"))
}
