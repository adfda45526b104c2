// Package auth verifies the bearer JWTs of Parcours callers and, in
// developer mode, mints them.
//
// Production keys are RS256/ES256 public keys from a JWKS file; HS256 with a
// key generated in the data directory exists only in developer mode. A token
// is accepted only with a known signing key, the configured issuer and
// audience, a valid exp/nbf window and the claims of DESIGN §3. It sits
// under package server and imports only server/outcome from the project.
package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parcours-sante/parcours/server/outcome"
)

// ActorTypes are the caller kinds of DESIGN §3.
var ActorTypes = []string{
	"hospital-clinician", "hospital-it", "gp", "pharmacist", "programme-operator",
	"mutual-prevention", "mutual-claims", "liability-risk-manager", "auditor",
	"researcher", "public-health", "patient",
}

// IsActorType reports whether t is one of ActorTypes.
func IsActorType(t string) bool { return slices.Contains(ActorTypes, t) }

// Claims are the Parcours token claims.
type Claims struct {
	ActorType string   `json:"actor_type"`
	Org       string   `json:"org,omitempty"`
	RPPS      string   `json:"rpps,omitempty"`
	Patient   string   `json:"patient,omitempty"`
	CareTeams []string `json:"care_teams,omitempty"`
	Purposes  []string `json:"purposes"`
	jwt.RegisteredClaims
}

// Config says which tokens a Verifier accepts.
type Config struct {
	Issuer   string
	Audience string
	// JWKSFile holds the RS256/ES256 public keys (kid → key).
	JWKSFile string
	// DevSecret enables HS256 with this key (developer mode only).
	DevSecret []byte
	// Leeway tolerates clock skew on exp/nbf.
	Leeway time.Duration
}

// Verifier checks bearer tokens.
type Verifier struct {
	cfg    Config
	keys   map[string]any // kid → *rsa.PublicKey | *ecdsa.PublicKey
	parser *jwt.Parser

	// verified memoises tokens whose signature, issuer, audience and claims
	// were checked: only their validity window is checked again (a client
	// sends the same token for many requests).
	mu       sync.RWMutex
	verified map[string]*Claims
}

// maxVerified bounds the memo of verified tokens (emptied when full).
const maxVerified = 10_000

// NewVerifier loads the JWKS file (if any). At least one of a JWKS file and
// a dev secret is required: a hub that cannot verify tokens does not start.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{cfg: cfg, keys: map[string]any{}}
	if cfg.JWKSFile != "" {
		b, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		if v.keys, err = ParseJWKS(b); err != nil {
			return nil, fmt.Errorf("jwks %s: %w", cfg.JWKSFile, err)
		}
	}
	if len(v.keys) == 0 && len(cfg.DevSecret) == 0 {
		return nil, errors.New("no token keys: give a JWKS file (--jwks) or run in --dev mode")
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("token issuer and audience must be configured")
	}
	methods := []string{"RS256", "ES256"}
	if len(cfg.DevSecret) > 0 {
		methods = append(methods, "HS256")
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	)
	return v, nil
}

// Verify checks an Authorization header value and returns the claims. Any
// failure is a 401 OperationOutcome that does not say which check failed
// beyond what helps an honest client.
func (v *Verifier) Verify(header string) (*Claims, error) {
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || raw == "" {
		return nil, unauthorized("missing bearer token (Authorization: Bearer <jwt>)")
	}
	raw = strings.TrimSpace(raw)
	v.mu.RLock()
	claims, ok := v.verified[raw]
	v.mu.RUnlock()
	if ok {
		now := time.Now()
		switch {
		case !now.Before(claims.ExpiresAt.Add(v.cfg.Leeway)):
			return nil, unauthorized("token expired")
		case claims.NotBefore != nil && now.Add(v.cfg.Leeway).Before(claims.NotBefore.Time):
			return nil, unauthorized("token not valid yet")
		}
		return claims, nil
	}
	claims = &Claims{}
	_, err := v.parser.ParseWithClaims(raw, claims, v.key)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, unauthorized("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, unauthorized("token not valid yet")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, unauthorized("malformed token")
	case err != nil:
		return nil, unauthorized("invalid token")
	}
	if !IsActorType(claims.ActorType) {
		return nil, unauthorized("token without a known actor_type")
	}
	if claims.Subject == "" || len(claims.Purposes) == 0 {
		return nil, unauthorized("token without sub or purposes")
	}
	v.mu.Lock()
	if len(v.verified) >= maxVerified {
		v.verified = nil
	}
	if v.verified == nil {
		v.verified = map[string]*Claims{}
	}
	v.verified[raw] = claims
	v.mu.Unlock()
	return claims, nil
}

func (v *Verifier) key(t *jwt.Token) (any, error) {
	if t.Method.Alg() == "HS256" {
		return v.cfg.DevSecret, nil
	}
	kid, _ := t.Header["kid"].(string)
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	return nil, errors.New("unknown key id")
}

func unauthorized(msg string) error {
	return outcome.New(http.StatusUnauthorized, outcome.CodeLogin, "", "%s", msg)
}

// ParseJWKS reads RSA and P-256 EC public keys from a JWK Set.
func ParseJWKS(b []byte) (map[string]any, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, Use, Alg string
			N, E               string
			Crv, X, Y          string
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	keys := map[string]any{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := b64int(k.N)
			e, err2 := b64int(k.E)
			if err1 != nil || err2 != nil || !e.IsInt64() {
				return nil, fmt.Errorf("key %q: bad RSA parameters", k.Kid)
			}
			keys[k.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			if k.Crv != "P-256" {
				return nil, fmt.Errorf("key %q: curve %s not supported (ES256 uses P-256)", k.Kid, k.Crv)
			}
			x, err1 := b64int(k.X)
			y, err2 := b64int(k.Y)
			if err1 != nil || err2 != nil || !elliptic.P256().IsOnCurve(x, y) {
				return nil, fmt.Errorf("key %q: bad EC point", k.Kid)
			}
			keys[k.Kid] = &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
		}
	}
	return keys, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}
