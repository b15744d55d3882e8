package httpedge

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithms a token may be signed with. HS* need [Auth.Secret]; the
// others need [Auth.PublicKeys] or [Auth.JWKS].
var (
	symmetricAlgs  = []string{"HS256", "HS384", "HS512"}
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	// defaultAsymmetric is what public keys accept when Auth.Algorithms
	// is empty: the ones identity providers sign with.
	defaultAsymmetric = []string{"RS256", "ES256", "EdDSA"}
)

// minRSABits is the smallest RSA key a token is checked with: shorter
// ones can be factored.
const minRSABits = 2048

// MaxPublicKeys bounds the keys [ParsePublicKeys] takes from one PEM file
// (a token is tried against each one).
const MaxPublicKeys = 16

// algorithms returns the algorithms a accepts, or an error naming what is
// wrong with a.Algorithms.
func (a *Auth) algorithms() ([]string, error) {
	asym := len(a.PublicKeys) > 0 || a.JWKS != nil
	if len(a.Algorithms) == 0 {
		var algs []string
		if len(a.Secret) > 0 {
			algs = append(algs, "HS256")
		}
		if asym {
			algs = append(algs, defaultAsymmetric...)
		}
		return algs, nil
	}
	for _, alg := range a.Algorithms {
		switch {
		case slices.Contains(symmetricAlgs, alg):
			if len(a.Secret) == 0 {
				return nil, fmt.Errorf("httpedge: algorithm %s needs Auth.Secret", alg)
			}
		case slices.Contains(asymmetricAlgs, alg):
			if !asym {
				return nil, fmt.Errorf("httpedge: algorithm %s needs Auth.PublicKeys or Auth.JWKS", alg)
			}
		default:
			return nil, fmt.Errorf("httpedge: algorithm %q: want one of %s, %s", alg,
				strings.Join(symmetricAlgs, ", "), strings.Join(asymmetricAlgs, ", "))
		}
	}
	return slices.Clone(a.Algorithms), nil
}

// verifier finds the key a token is checked with. The parser has already
// refused any algorithm not configured; here a key is handed out only for
// the algorithm it belongs to, so a public key is never taken as an HMAC
// secret (the RS256/HS256 confusion) and a JWKS cannot smuggle in a
// symmetric key.
type verifier struct {
	secret []byte
	keys   []crypto.PublicKey
	jwks   *JWKS
}

func (v *verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		if slices.Contains(symmetricAlgs, alg) {
			if len(v.secret) == 0 {
				return nil, errNoKey
			}
			return v.secret, nil
		}
		var fit []jwt.VerificationKey
		var jwksErr error
		if v.jwks != nil {
			k, err := v.jwks.key(ctx, t)
			switch k := k.(type) {
			case jwt.VerificationKeySet:
				fit = appendFitting(fit, alg, k.Keys...)
			case nil:
				jwksErr = err
			default:
				fit = appendFitting(fit, alg, k)
			}
		}
		for _, k := range v.keys {
			fit = appendFitting(fit, alg, k)
		}
		switch {
		case len(fit) == 1:
			return fit[0], nil
		case len(fit) > 1:
			return jwt.VerificationKeySet{Keys: fit}, nil
		case errors.Is(jwksErr, errUnknownKID):
			return nil, errUnknownKID
		}
		return nil, errNoKey
	}
}

// appendFitting appends the keys that belong to alg.
func appendFitting(fit []jwt.VerificationKey, alg string, keys ...jwt.VerificationKey) []jwt.VerificationKey {
	for _, k := range keys {
		if fits(alg, k) {
			fit = append(fit, k)
		}
	}
	return fit
}

func fits(alg string, key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) && k.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// ParsePublicKeys reads the public keys in PEM data, for [Auth.PublicKeys]:
// "PUBLIC KEY" blocks (RSA, ECDSA P-256/384/521, Ed25519), "RSA PUBLIC
// KEY" blocks and certificates (their key is taken; their dates and chain
// are not checked). Several keys let tokens signed with the old and the
// new key both pass during a rotation. At most [MaxPublicKeys]; RSA keys
// need 2048 bits or more.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if len(keys) == MaxPublicKeys {
			return nil, fmt.Errorf("httpedge: more than %d public keys", MaxPublicKeys)
		}
		var k any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				k = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("httpedge: PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never a private key)", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("httpedge: PEM block %d: %w", len(keys)+1, err)
		}
		if err := usableKey(k); err != nil {
			return nil, fmt.Errorf("httpedge: PEM block %d: %w", len(keys)+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("httpedge: no PEM public key found")
	}
	return keys, nil
}

func usableKey(k any) error {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits: want %d or more", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521() {
			return errors.New("ECDSA key on an unsupported curve: want P-256, P-384 or P-521")
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported key type %T: want RSA, ECDSA or Ed25519", k)
	}
	return nil
}
