package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/squall-sse/squall"
	"github.com/squall-sse/squall/httpedge"
)

// edgeOptions are the flags of the production edge: auth, CORS, limits,
// metrics and the demo page.
type edgeOptions struct {
	jwtSecret       string
	jwtPublicKey    string
	jwksURL         string
	jwtAudience     list
	jwtIssuer       string
	jwtLeeway       time.Duration
	jwtAlgorithms   list
	authCookie      string
	corsOrigins     originList
	maxStreams      int
	maxStreamsPerIP int
	maxChannels     int
	trustProxy      bool
	demo            bool
	adminSecret     string
	adminInterval   time.Duration

	jwks *httpedge.JWKS // closed by close
}

func (e *edgeOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&e.jwtSecret, "jwt-secret", "", "HS256 secret that turns auth on (prefer SQUALL_JWT_SECRET: flags show in ps)")
	fs.StringVar(&e.jwtPublicKey, "jwt-public-key", "", "PEM file of public keys (RSA, ECDSA, Ed25519) that turns auth on for RS256, ES256 and EdDSA tokens")
	fs.StringVar(&e.jwksURL, "jwks-url", "", "URL of an identity provider's JSON Web Key Set that turns auth on for RS256, ES256 and EdDSA tokens; fetched at start, every 10m, and on an unknown kid (at most once a minute)")
	fs.Var(&e.jwtAudience, "jwt-audience", "accepted token audience (aud); repeatable or comma-separated; empty does not check aud")
	fs.StringVar(&e.jwtIssuer, "jwt-issuer", "", "required token issuer (iss); empty does not check iss")
	fs.DurationVar(&e.jwtLeeway, "jwt-leeway", 0, "clock skew allowed on exp and nbf, at most 5m")
	fs.Var(&e.jwtAlgorithms, "jwt-algorithms", "token algorithms accepted, comma-separated; empty: HS256 with --jwt-secret, RS256, ES256 and EdDSA with keys")
	fs.StringVar(&e.authCookie, "auth-cookie", httpedge.DefaultAuthCookie, "cookie a token may come in (for EventSource withCredentials)")
	fs.Var(&e.corsOrigins, "cors-origin", `origin allowed to call the API from a browser, scheme://host[:port] or "*"; repeatable or comma-separated`)
	fs.IntVar(&e.maxStreams, "max-streams", httpedge.DefaultMaxStreams, "streams open at once, all clients (503 above); 0 disables")
	fs.IntVar(&e.maxStreamsPerIP, "max-streams-per-ip", 0, "streams open at once per client address (429 above); 0 disables")
	fs.IntVar(&e.maxChannels, "max-channels", 16, "channels one stream may join")
	fs.BoolVar(&e.trustProxy, "trust-proxy", false, "take the client address from the last X-Forwarded-For hop (only behind a proxy that appends it)")
	fs.BoolVar(&e.demo, "demo", true, "serve the demo page at /")
	fs.DurationVar(&e.adminInterval, "admin-interval", 5*time.Second, "cluster mode: how often each node reports its channel counts to Redis for the admin API; answers are at most 2 intervals old, and a stopped node drops out within 2 (at least 10ms)")
	fs.StringVar(&e.adminSecret, "admin-secret", "", "bearer secret of the admin API under /admin/ (presence, disconnect), at least 16 bytes (prefer SQUALL_ADMIN_SECRET: flags show in ps); empty: no admin API")
}

// originList is a repeatable flag; SQUALL_CORS_ORIGIN takes a
// comma-separated list the same way.
type originList []string

func (l *originList) String() string { return strings.Join(*l, ",") }

func (l *originList) Set(v string) error {
	for o := range strings.SplitSeq(v, ",") {
		o = strings.TrimSpace(o)
		if err := httpedge.ValidOrigin(o); err != nil {
			return err
		}
		*l = append(*l, o)
	}
	return nil
}

// list is a repeatable flag of comma-separated values.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// minSecret is the shortest HS256 secret that is not a warning: a short
// one can be brute-forced from any token.
const minSecret = 32

// configure fills cfg's edge settings from the flags.
func (e *edgeOptions) configure(cfg *squall.Config, log *slog.Logger) error {
	if e.maxChannels < 1 {
		return fmt.Errorf("--max-channels %d: want at least 1", e.maxChannels)
	}
	if e.maxStreams < 0 || e.maxStreamsPerIP < 0 {
		return errors.New("--max-streams and --max-streams-per-ip: want 0 (no limit) or more")
	}
	cfg.MaxChannels = e.maxChannels
	cfg.MaxStreams = e.maxStreams
	if e.maxStreams == 0 {
		cfg.MaxStreams = -1 // the flag says 0 for "off"; the library says negative
	}
	cfg.MaxStreamsPerIP = e.maxStreamsPerIP
	cfg.TrustProxy = e.trustProxy
	cfg.CORSOrigins = e.corsOrigins
	cfg.Demo = e.demo
	if e.adminSecret != "" && len(e.adminSecret) < httpedge.MinAdminSecret {
		return fmt.Errorf("--admin-secret: want at least %d bytes", httpedge.MinAdminSecret)
	}
	cfg.AdminSecret = e.adminSecret
	cfg.AdminInterval = e.adminInterval
	auth, err := e.auth(log)
	if err != nil {
		return err
	}
	cfg.Auth = auth
	log.Info("edge", "auth", cfg.Auth != nil, "cors_origins", []string(e.corsOrigins),
		"max_streams", e.maxStreams, "max_streams_per_ip", e.maxStreamsPerIP, "trust_proxy", e.trustProxy, "demo", e.demo, "admin", e.adminSecret != "")
	return nil
}

// auth builds the token check from the flags; nil when no key is given.
// A JWKS is fetched here, so a wrong URL fails the start.
func (e *edgeOptions) auth(log *slog.Logger) (*httpedge.Auth, error) {
	a := &httpedge.Auth{Cookie: e.authCookie, Audience: e.jwtAudience, Issuer: e.jwtIssuer,
		Leeway: e.jwtLeeway, Algorithms: e.jwtAlgorithms}
	if e.jwtSecret != "" {
		if len(e.jwtSecret) < minSecret {
			log.Warn("the JWT secret is short: use 32 random bytes or more", "bytes", len(e.jwtSecret))
		}
		a.Secret = []byte(e.jwtSecret)
	}
	if e.jwtPublicKey != "" {
		pem, err := os.ReadFile(e.jwtPublicKey)
		if err != nil {
			return nil, fmt.Errorf("--jwt-public-key: %w", err)
		}
		if a.PublicKeys, err = httpedge.ParsePublicKeys(pem); err != nil {
			return nil, fmt.Errorf("--jwt-public-key %s: %w", e.jwtPublicKey, err)
		}
	}
	if a.Secret == nil && a.PublicKeys == nil && e.jwksURL == "" {
		if len(e.jwtAudience) > 0 || e.jwtIssuer != "" || e.jwtLeeway != 0 || len(e.jwtAlgorithms) > 0 {
			return nil, errors.New("--jwt-audience, --jwt-issuer, --jwt-leeway and --jwt-algorithms need --jwt-secret, --jwt-public-key or --jwks-url")
		}
		return nil, nil
	}
	// Checked before the JWKS is fetched: a typo in a flag should not
	// wait on the network.
	probe := *a
	if e.jwksURL != "" {
		probe.JWKS = &httpedge.JWKS{}
	}
	if err := probe.Validate(); err != nil {
		return nil, fmt.Errorf("auth flags: %w", err)
	}
	if e.jwksURL != "" {
		jwks, err := httpedge.NewJWKS(context.Background(), httpedge.JWKSConfig{URL: e.jwksURL, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("--jwks-url: %w", err)
		}
		a.JWKS, e.jwks = jwks, jwks
	}
	log.Info("auth", "hs256", a.Secret != nil, "public_keys", len(a.PublicKeys), "jwks_url", e.jwksURL,
		"audience", []string(e.jwtAudience), "issuer", e.jwtIssuer, "leeway", e.jwtLeeway)
	return a, nil
}

// close stops what configure started.
func (e *edgeOptions) close() {
	if e.jwks != nil {
		_ = e.jwks.Close()
	}
}

// shutdown drains the node within window, in this order:
//
//  1. /readyz turns 503 and new streams are refused (503), so the load
//     balancer stops sending clients here;
//  2. open streams get a jittered "retry:" hint and are closed, in batches
//     spread over the first half of the window, so that their clients
//     reconnect to the other nodes as a ramp;
//  3. the listener closes and publishes in flight finish (http.Server
//     Shutdown waits for their handlers);
//  4. the hub stops, streams stuck in a write when the window ends are cut,
//     and then the relay, so that publishes in flight reached Redis.
//
// It returns nil once the server has stopped, even when the window passed
// with streams still open: the process exits 0 within the window.
func shutdown(log *slog.Logger, window time.Duration, b *squall.Broker, srv *http.Server) error {
	log.Info("draining", "window", window, "streams", b.Hub().OpenStreams())
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	if err := b.Drain(ctx, window/2); err != nil {
		log.Warn("drain window passed with streams still open", "streams", b.Hub().OpenStreams())
	}
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := b.Shutdown(ctx); err != nil {
		log.Warn("hub stopped at the end of the drain window", "err", err)
	}
	log.Info("stopped")
	return nil
}
