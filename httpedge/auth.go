package httpedge

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/squall-sse/squall/actors"
)

// DefaultAuthCookie is the cookie a token is read from when Auth.Cookie is
// empty.
const DefaultAuthCookie = "squall_token"

// Auth turns on token checks for GET /events and POST /publish. Tokens are
// JWTs signed with HS256 and a shared secret; their [Claims] list the
// channels they may publish to and subscribe to.
//
// A token is read from, in order: the Authorization header (Bearer), the
// access_token query parameter, and the cookie named Cookie. The first one
// present is the only one looked at, so a bad header is not rescued by a
// good cookie. A query token ends up in proxies' access logs; prefer the
// cookie for browsers (EventSource with withCredentials) and the header for
// everything else.
type Auth struct {
	// Secret is the HS256 key. It must not be empty; use 32 random bytes or
	// more.
	Secret []byte
	// Cookie is the name of the cookie a token may come in. Empty means
	// [DefaultAuthCookie].
	Cookie string
	// ExpiryRetry is the reconnect hint sent to a stream whose token expires
	// before it closes. Zero means 1s.
	ExpiryRetry time.Duration
}

// Claims is what a Squall token carries: the registered claims ("exp" is
// required, "sub" names the client in the logs, "nbf" is honoured) and two
// lists of channel patterns:
//
//	{"sub": "u1", "exp": 1767225600,
//	 "publish":   ["orders"],
//	 "subscribe": ["user:u1", "room:*"]}
//
// A pattern is a channel name, matched exactly, or a prefix followed by "*",
// which matches every channel that starts with the prefix ("*" alone matches
// every channel). A missing list allows nothing.
type Claims struct {
	jwt.RegisteredClaims
	Publish   []string `json:"publish,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
}

// CanPublish reports whether the token may publish to channel.
func (c *Claims) CanPublish(channel string) bool { return matchAny(c.Publish, channel) }

// CanSubscribe reports whether the token may subscribe to channel.
func (c *Claims) CanSubscribe(channel string) bool { return matchAny(c.Subscribe, channel) }

func matchAny(patterns []string, channel string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(channel, prefix) {
				return true
			}
		} else if p == channel {
			return true
		}
	}
	return false
}

// SignToken signs c with secret (HS256): how a backend mints a token for a
// client, and how tests make one.
func SignToken(secret []byte, c Claims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

var (
	errNoToken = errors.New("httpedge: missing token")
	// ErrNoSecret is what [New] panics with for an Auth without a secret.
	ErrNoSecret = errors.New("httpedge: Auth.Secret is empty")
)

// tokenSource says where a token came from; a cookie rides along with
// cross-site requests on its own, the others never do.
type tokenSource int

const (
	fromHeader tokenSource = iota + 1
	fromQuery
	fromCookie
)

// authenticator checks tokens. Its parser accepts HS256 only: "none",
// RS256-with-the-secret-as-public-key and every other algorithm are
// refused before the signature is looked at.
type authenticator struct {
	secret []byte
	cookie string
	retry  time.Duration
	parser *jwt.Parser
}

func newAuthenticator(a *Auth) *authenticator {
	if len(a.Secret) == 0 {
		panic(ErrNoSecret)
	}
	cookie := a.Cookie
	if cookie == "" {
		cookie = DefaultAuthCookie
	}
	retry := a.ExpiryRetry
	if retry <= 0 {
		retry = time.Second
	}
	return &authenticator{
		secret: a.Secret,
		cookie: cookie,
		retry:  retry,
		parser: jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired()),
	}
}

// token finds the request's token and where it came from.
func (a *authenticator) token(r *http.Request) (string, tokenSource, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", fromHeader, errors.New("the Authorization header must be \"Bearer <token>\"")
		}
		return strings.TrimSpace(tok), fromHeader, nil
	}
	if tok := r.URL.Query().Get("access_token"); tok != "" {
		return tok, fromQuery, nil
	}
	if c, err := r.Cookie(a.cookie); err == nil && c.Value != "" {
		return c.Value, fromCookie, nil
	}
	return "", 0, errNoToken
}

// authenticate returns the request's verified claims.
func (a *authenticator) authenticate(r *http.Request) (*Claims, tokenSource, error) {
	raw, src, err := a.token(r)
	if err != nil {
		if errors.Is(err, errNoToken) {
			return nil, 0, fmt.Errorf("missing token: send Authorization: Bearer <token>, the %s cookie or access_token", a.cookie)
		}
		return nil, src, err
	}
	c := &Claims{}
	if _, err := a.parser.ParseWithClaims(raw, c, a.key); err != nil {
		return nil, src, fmt.Errorf("invalid token: %w", err)
	}
	return c, src, nil
}

func (a *authenticator) key(*jwt.Token) (any, error) { return a.secret, nil }

// authenticate checks the request's token when auth is on. When ok is
// false it has answered 401. Without auth, claims is nil.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (c *Claims, src tokenSource, ok bool) {
	if s.auth == nil {
		return nil, 0, true
	}
	c, src, err := s.auth.authenticate(r)
	if err != nil {
		// RFC 6750: a request without credentials gets the bare challenge.
		challenge := `Bearer realm="squall"`
		if src != 0 {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		s.metrics.authFailed(http.StatusUnauthorized)
		s.cfg.Logger.Debug("auth refused", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusUnauthorized, err.Error())
		return nil, src, false
	}
	return c, src, true
}

// forbidden answers 403 for a token that does not cover channel.
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, c *Claims, action, channel string) {
	s.metrics.authFailed(http.StatusForbidden)
	s.cfg.Logger.Debug("auth forbidden", "remote", r.RemoteAddr, "sub", c.Subject, "action", action, "channel", channel)
	writeError(w, http.StatusForbidden, fmt.Sprintf("the token does not allow %s on channel %q", action, channel))
}

// closeAtExpiry closes st with the retry hint when its token expires: the
// browser reconnects and presents whatever token it has by then (a
// refreshed cookie), which is checked like any other. stop cancels the
// timer.
func (s *Server) closeAtExpiry(st *actors.Stream, c *Claims) (stop func()) {
	if c == nil || c.ExpiresAt == nil {
		return func() {}
	}
	t := time.AfterFunc(time.Until(c.ExpiresAt.Time), func() {
		st.CloseWith(actors.Expired, s.auth.retry)
	})
	return func() { t.Stop() }
}

// subject names a token's holder in the stream log lines.
func (c *Claims) subject() string {
	if c == nil {
		return ""
	}
	return c.Subject
}
