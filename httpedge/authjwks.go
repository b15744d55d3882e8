package httpedge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Defaults of [JWKSConfig], used when the matching field is zero.
const (
	DefaultJWKSFetchTimeout = 5 * time.Second
	DefaultJWKSRefresh      = 10 * time.Minute
	DefaultJWKSRefetch      = time.Minute
	DefaultJWKSMaxBytes     = 256 << 10
	DefaultJWKSMaxKeys      = 64
)

// JWKSConfig configures a [JWKS]. Only URL is required.
type JWKSConfig struct {
	// URL is where the JSON Web Key Set is served, http or https (use
	// https outside a private network: whoever can change the answer can
	// sign tokens).
	URL string
	// Client fetches the set. Nil means a client of Squall's own. Its
	// Timeout is replaced by FetchTimeout and its transport wrapped to
	// enforce MaxBytes.
	Client *http.Client
	// FetchTimeout bounds one fetch, connect to last byte. Zero means 5s.
	FetchTimeout time.Duration
	// Refresh is how often the set is fetched again, so that keys the
	// issuer adds are known before they are used and keys it removes stop
	// being accepted. Zero means 10m; negative disables the refresh.
	Refresh time.Duration
	// Refetch is the shortest time between two fetches caused by a token
	// whose "kid" is not in the set: the first such token fetches at once,
	// later ones within Refetch are refused without a fetch, so random kids
	// cannot make the hub hammer the issuer. Zero means 1m.
	Refetch time.Duration
	// MaxBytes bounds the set's response body; a larger answer fails the
	// fetch and the keys already known stay. Zero means 256 KiB.
	MaxBytes int64
	// MaxKeys bounds the keys in the set (a token without a "kid" is tried
	// against each one); a larger set fails the fetch and the keys already
	// known stay. Zero means 64.
	MaxKeys int
	// Logger gets failed fetches at Warn. Nil discards.
	Logger *slog.Logger
}

// JWKS is a JSON Web Key Set fetched from a URL and kept fresh: the keys
// of an identity provider that rotates them. Pass it in [Auth.JWKS]. It
// is safe for concurrent use; Close it when done.
type JWKS struct {
	url     string
	keyfunc keyfunc.Keyfunc
	cache   jwkset.Storage // reads the keys fetched so far
	fetcher jwkset.Storage // a KeyRead miss fetches the set
	limit   *rate.Limiter
	timeout time.Duration
	log     *slog.Logger
	ctx     context.Context // ends the refresh goroutine and fetches in flight
	cancel  context.CancelFunc
	client  *http.Client

	mu     sync.Mutex
	flight chan struct{} // closed when the fetch for an unknown kid ends; nil when none runs
}

var (
	errUnknownKID = errors.New("no signing key with the token's kid")
	errNoKey      = errors.New("no signing key fits the token's algorithm")
)

// NewJWKS fetches the set at cfg.URL once and returns it; it fails when
// that fetch fails or yields no usable key, so a wrong URL shows at
// start. It starts the refresh goroutine, which Close (or ctx) ends.
func NewJWKS(ctx context.Context, cfg JWKSConfig) (*JWKS, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("httpedge: JWKS URL %q: want http(s)://host/path", cfg.URL)
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultJWKSFetchTimeout
	}
	switch {
	case cfg.Refresh == 0:
		cfg.Refresh = DefaultJWKSRefresh
	case cfg.Refresh < 0:
		cfg.Refresh = 0 // jwkset: no refresh goroutine
	}
	if cfg.Refetch <= 0 {
		cfg.Refetch = DefaultJWKSRefetch
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultJWKSMaxBytes
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultJWKSMaxKeys
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	j := &JWKS{url: cfg.URL, limit: rate.NewLimiter(rate.Every(cfg.Refetch), 1),
		timeout: cfg.FetchTimeout, log: cfg.Logger, client: jwksClient(cfg)}
	j.ctx, j.cancel = context.WithCancel(ctx)
	cache, err := jwkset.NewStorageFromHTTP(cfg.URL, jwkset.HTTPClientStorageOptions{
		Client:          j.client,
		Ctx:             j.ctx,
		HTTPTimeout:     cfg.FetchTimeout,
		RefreshInterval: cfg.Refresh,
		RefreshErrorHandler: func(_ context.Context, err error) {
			j.log.Warn("JWKS fetch failed; the keys already known stay", "url", j.url, "err", err)
		},
		Storage: boundedKeys{Storage: jwkset.NewMemoryStorage(), max: cfg.MaxKeys},
	})
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("httpedge: JWKS %s: %w", cfg.URL, err)
	}
	if keys, err := cache.KeyReadAll(j.ctx); err != nil || len(keys) == 0 {
		j.Close()
		return nil, fmt.Errorf("httpedge: JWKS %s has no key Squall can use (RSA, EC or Ed25519)", cfg.URL)
	}
	j.cache = cache
	// jwkset fetches on a missed KeyRead only through its client, rate
	// limited by a limiter that blocks the caller; the limit is applied
	// here instead (see refetch), so that one is unlimited.
	j.fetcher, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{cfg.URL: cache},
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
	})
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("httpedge: JWKS %s: %w", cfg.URL, err)
	}
	j.keyfunc, err = keyfunc.New(keyfunc.Options{Ctx: j.ctx, Storage: gatedKeys{Storage: cache, j: j},
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("httpedge: JWKS %s: %w", cfg.URL, err)
	}
	return j, nil
}

// Close stops the refresh goroutine. It is safe to call more than once.
func (j *JWKS) Close() error {
	j.cancel()
	j.client.CloseIdleConnections()
	return nil
}

// key returns the key (or, for a token without a kid, the set of keys)
// that may have signed t.
func (j *JWKS) key(ctx context.Context, t *jwt.Token) (any, error) {
	return j.keyfunc.KeyfuncCtx(ctx)(t)
}

// refetch fetches the set for a token whose kid is unknown, at most once
// per Refetch. Callers that come while a fetch runs wait for it rather
// than being refused: after a rotation, the first clients with new tokens
// arrive together. It reports whether a fetch ended since the call began.
func (j *JWKS) refetch(ctx context.Context, kid string) bool {
	j.mu.Lock()
	if done := j.flight; done != nil {
		j.mu.Unlock()
		select {
		case <-done:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !j.limit.Allow() {
		j.mu.Unlock()
		return false
	}
	done := make(chan struct{})
	j.flight = done
	j.mu.Unlock()
	// The fetch does not end with the request that caused it, which other
	// requests may be waiting on; FetchTimeout bounds it.
	fctx, cancel := context.WithTimeout(j.ctx, j.timeout)
	_, err := j.fetcher.KeyRead(fctx, kid)
	cancel()
	if err != nil && !errors.Is(err, jwkset.ErrKeyNotFound) {
		j.log.Warn("JWKS fetch failed", "url", j.url, "err", err)
	}
	j.mu.Lock()
	j.flight = nil
	j.mu.Unlock()
	close(done)
	return true
}

// gatedKeys is the cache with a fetch, through JWKS.refetch, on a kid it
// does not hold.
type gatedKeys struct {
	jwkset.Storage
	j *JWKS
}

func (g gatedKeys) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	k, err := g.Storage.KeyRead(ctx, kid)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return k, err
	}
	if g.j.refetch(ctx, kid) {
		if k, err := g.Storage.KeyRead(ctx, kid); err == nil {
			return k, nil
		}
	}
	return jwkset.JWK{}, errUnknownKID
}

// boundedKeys refuses a set of more than max keys, which leaves the keys
// already known in place.
type boundedKeys struct {
	jwkset.Storage
	max int
}

func (b boundedKeys) KeyReplaceAll(ctx context.Context, keys []jwkset.JWK) error {
	if len(keys) > b.max {
		return fmt.Errorf("httpedge: the JWKS holds %d keys, over the bound of %d", len(keys), b.max)
	}
	return b.Storage.KeyReplaceAll(ctx, keys)
}

// jwksClient is cfg.Client (or a client of its own) with the fetch timeout
// and the body bound.
func jwksClient(cfg JWKSConfig) *http.Client {
	var c http.Client
	if cfg.Client != nil {
		c = *cfg.Client
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	c.Transport = cappedTransport{base: base, max: cfg.MaxBytes}
	c.Timeout = cfg.FetchTimeout
	return &c
}

// cappedTransport fails a response whose body passes max bytes.
type cappedTransport struct {
	base http.RoundTripper
	max  int64
}

func (t cappedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("httpedge: JWKS response of %d bytes, over the bound of %d", resp.ContentLength, t.max)
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: t.max}
	return resp, nil
}

func (t cappedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, errors.New("httpedge: JWKS response over the byte bound")
	}
	return n, err
}
