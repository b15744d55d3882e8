package httpedge

import (
	"crypto"
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
// JWTs; their [Claims] list the channels they may publish to and
// subscribe to. A token is checked with one of:
//
//   - Secret: HS256 with a shared secret;
//   - PublicKeys: RS256, ES256 or EdDSA with keys read from PEM
//     ([ParsePublicKeys]);
//   - JWKS: the same algorithms with an identity provider's key set,
//     fetched and kept fresh ([NewJWKS]);
//
// or any mix of them, each for the algorithms of its kind only (see
// Algorithms). Or, instead of tokens, Authenticate decides with the
// application's own sessions.
//
// A token is read from, in order: the Authorization header (Bearer), the
// access_token query parameter, and the cookie named Cookie. The first one
// present is the only one looked at, so a bad header is not rescued by a
// good cookie. A query token ends up in proxies' access logs; prefer the
// cookie for browsers (EventSource with withCredentials) and the header for
// everything else.
type Auth struct {
	// Secret is the HS256 key; use 32 random bytes or more. Empty means no
	// HS256.
	Secret []byte
	// PublicKeys check tokens signed with the matching private keys (RSA
	// of 2048 bits or more, ECDSA P-256/384/521, Ed25519), each tried in
	// turn; a token's "kid" is not looked at.
	PublicKeys []crypto.PublicKey
	// JWKS checks tokens with the key their "kid" names in a remote key
	// set (every key of the set when the token has no kid). The caller
	// owns it and closes it after the server.
	JWKS *JWKS
	// Algorithms pins the "alg" a token may have; any other, "none"
	// included, is refused before a key is looked at. Empty means HS256
	// with a Secret, and RS256, ES256 and EdDSA with PublicKeys or a
	// JWKS. Listed HS* algorithms need a Secret; the others need keys.
	Algorithms []string
	// Audience, when set, requires the token's "aud" to hold at least one
	// of these values.
	Audience []string
	// Issuer, when set, requires the token's "iss" to be this value.
	Issuer string
	// Leeway is the clock skew allowed when checking "exp" and "nbf",
	// from 0 (the default) to [MaxLeeway]. A stream stays open until its
	// token's exp plus Leeway.
	Leeway time.Duration

	// Authenticate, when set, replaces the token check: it returns the
	// claims of r from the application's own session (a cookie, a header)
	// or an error, whose text is the reason of the 401 the client gets.
	// Claims.ExpiresAt, if set, closes the stream at that time as for a
	// token, and claims already past it are refused. It runs on every
	// stream open and publish, so it should be quick; use r.Context() for
	// what it looks up. Requests it admits are treated as carrying ambient
	// credentials (like a cookie): a publish from another origin needs
	// that origin in Config.CORSOrigins. It cannot be combined with
	// Secret, PublicKeys or JWKS.
	Authenticate func(r *http.Request) (Claims, error)

	// Cookie is the name of the cookie a token may come in. Empty means
	// [DefaultAuthCookie].
	Cookie string
	// ExpiryRetry is the reconnect hint sent to a stream whose token expires
	// before it closes. Zero means 1s.
	ExpiryRetry time.Duration
}

// MaxLeeway bounds [Auth.Leeway]: skew beyond it is a broken clock, and
// each second of leeway is a second more of life for every expired token.
const MaxLeeway = 5 * time.Minute

// MaxTokenBytes bounds a token's length; a longer one is refused with 401
// before it is decoded.
const MaxTokenBytes = 16 << 10

// Validate reports what makes a unusable; [New] panics with the same error.
func (a *Auth) Validate() error {
	_, err := buildAuthenticator(a)
	return err
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
	// ErrNoSecret is what [New] panics with for an Auth with no way to
	// check a request: no Secret, PublicKeys, JWKS or Authenticate.
	ErrNoSecret = errors.New("httpedge: Auth has no Secret, PublicKeys, JWKS or Authenticate")
)

// tokenSource says where a token came from; a cookie rides along with
// cross-site requests on its own, the others never do.
type tokenSource int

const (
	fromHeader tokenSource = iota + 1
	fromQuery
	fromCookie
	// fromHook: Auth.Authenticate admitted the request, maybe by a
	// session cookie, so it is treated like one.
	fromHook
)

// authenticator checks requests: with hook when set, else with tokens
// whose algorithm parser pins and whose key keys finds.
type authenticator struct {
	hook   func(*http.Request) (Claims, error)
	keys   *verifier
	parser *jwt.Parser
	cookie string
	retry  time.Duration
	leeway time.Duration
}

// newAuthenticator is buildAuthenticator for [New], which panics on a
// programmer's mistake.
func newAuthenticator(a *Auth) *authenticator {
	au, err := buildAuthenticator(a)
	if err != nil {
		panic(err)
	}
	return au
}

func buildAuthenticator(a *Auth) (*authenticator, error) {
	hasKeys := len(a.Secret) > 0 || len(a.PublicKeys) > 0 || a.JWKS != nil
	switch {
	case a.Authenticate == nil && !hasKeys:
		return nil, ErrNoSecret
	case a.Authenticate != nil && hasKeys:
		return nil, errors.New("httpedge: Auth.Authenticate replaces the token check: set it or Secret, PublicKeys and JWKS, not both")
	case a.Leeway < 0 || a.Leeway > MaxLeeway:
		return nil, fmt.Errorf("httpedge: Auth.Leeway %v: want 0 to %v", a.Leeway, MaxLeeway)
	}
	for _, k := range a.PublicKeys {
		if err := usableKey(k); err != nil {
			return nil, fmt.Errorf("httpedge: Auth.PublicKeys: %w", err)
		}
	}
	algs, err := a.algorithms()
	if err != nil {
		return nil, err
	}
	au := &authenticator{
		hook:   a.Authenticate,
		keys:   &verifier{secret: a.Secret, keys: a.PublicKeys, jwks: a.JWKS},
		cookie: a.Cookie,
		retry:  a.ExpiryRetry,
		leeway: a.Leeway,
	}
	if au.cookie == "" {
		au.cookie = DefaultAuthCookie
	}
	if au.retry <= 0 {
		au.retry = time.Second
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithExpirationRequired(), jwt.WithLeeway(a.Leeway)}
	if len(a.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(a.Audience...))
	}
	if a.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.Issuer))
	}
	au.parser = jwt.NewParser(opts...)
	return au, nil
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
	if a.hook != nil {
		c, err := a.hook(r)
		if err != nil {
			return nil, fromHook, err
		}
		// A stream opened past its expiry would close at once and come
		// back in a loop.
		if c.ExpiresAt != nil && time.Since(c.ExpiresAt.Time) > a.leeway {
			return nil, fromHook, errors.New("session expired")
		}
		return &c, fromHook, nil
	}
	raw, src, err := a.token(r)
	if err != nil {
		if errors.Is(err, errNoToken) {
			return nil, 0, fmt.Errorf("missing token: send Authorization: Bearer <token>, the %s cookie or access_token", a.cookie)
		}
		return nil, src, err
	}
	if len(raw) > MaxTokenBytes {
		return nil, src, fmt.Errorf("invalid token: over %d bytes", MaxTokenBytes)
	}
	c := &Claims{}
	if _, err := a.parser.ParseWithClaims(raw, c, a.keys.keyfunc(r.Context())); err != nil {
		return nil, src, fmt.Errorf("invalid token: %w", err)
	}
	return c, src, nil
}

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

// closeAtExpiry closes st with the retry hint when its token expires
// (with the leeway, past which a reconnect with it is refused): the
// browser reconnects and presents whatever token it has by then (a
// refreshed cookie), which is checked like any other. stop cancels the
// timer.
func (s *Server) closeAtExpiry(st *actors.Stream, c *Claims) (stop func()) {
	if c == nil || c.ExpiresAt == nil {
		return func() {}
	}
	t := time.AfterFunc(time.Until(c.ExpiresAt.Time)+s.auth.leeway, func() {
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
