package auth

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Developer-mode defaults: the issuer and audience of dev tokens.
const (
	DevIssuer   = "parcours-dev"
	DevAudience = "parcours"
	devKeyFile  = "dev-signing-key"
	// DevTokensFile is written in the data directory by `serve --dev`.
	DevTokensFile = "dev-tokens.json"
)

// DevSecret returns the HS256 key of dataDir, creating it on first use.
func DevSecret(dataDir string, create bool) ([]byte, error) {
	path := filepath.Join(dataDir, devKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return hex.DecodeString(strings.TrimSpace(string(b)))
	}
	if !errors.Is(err, os.ErrNotExist) || !create {
		return nil, fmt.Errorf("dev signing key: %w (run `parcours serve --dev` on this data directory first)", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// Mint signs claims with the dev key (HS256) for the dev issuer/audience.
func Mint(secret []byte, c Claims, ttl time.Duration) (string, error) {
	now := time.Now()
	c.Issuer = DevIssuer
	c.Audience = jwt.ClaimStrings{DevAudience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now.Add(-time.Minute))
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	if c.ID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.ID = hex.EncodeToString(b[:])
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// DevUser is the demo identity of one actor type.
type DevUser struct {
	Claims
}

// Demo organisations of developer mode: the hospital-it and
// hospital-clinician tokens share a hospital, the gp and pharmacist tokens
// share a practice (so that data pushed by the first is visible to the
// second for TREAT).
const (
	DevHospital  = "https://finess.esante.gouv.fr|750712184"
	DevPractice  = "https://finess.esante.gouv.fr|750000001"
	DevOperator  = "https://sirene.fr|552100554"
	DevMutual    = "https://sirene.fr|775671356"
	DevInsurer   = "https://sirene.fr|775684764"
	DevAuthority = "https://sirene.fr|130007669"
)

// DevUsers returns one identity per actor type with that type's allowed
// purposes (domain brief §5).
func DevUsers() []Claims {
	u := func(actor, sub, org, rpps string, purposes ...string) Claims {
		return Claims{ActorType: actor, Org: org, RPPS: rpps, Purposes: purposes, RegisteredClaims: jwt.RegisteredClaims{Subject: sub}}
	}
	return []Claims{
		u("hospital-clinician", "dr-hopital", DevHospital, "10000000011", "TREAT", "COC", "ETREAT", "BTG", "HOPERAT", "HQUALIMP", "PUBHLTH", "HRESCH", "rupture-detection", "liability-claim-handling"),
		u("hospital-it", "dsi-hopital", DevHospital, "", "HOPERAT", "HSYSADMIN"),
		u("gp", "dr-generaliste", DevPractice, "10000000029", "TREAT", "COC", "ETREAT", "BTG", "HPAYMT", "HQUALIMP", "PUBHLTH", "HRESCH", "rupture-detection"),
		u("pharmacist", "pharmacien", DevPractice, "10000000037", "TREAT", "HPAYMT", "HOPERAT", "PUBHLTH"),
		u("programme-operator", "operateur-prevention", DevOperator, "10000000045", "prevention-programme-delivery", "prevention-programme-reporting"),
		u("mutual-prevention", "mutuelle-prevention", DevMutual, "", "prevention-programme-reporting", "rupture-reporting", "underwriting-pricing"),
		u("mutual-claims", "mutuelle-gestion", DevMutual, "", "HPAYMT", "COVERAGE", "underwriting-pricing"),
		u("liability-risk-manager", "assureur-rc", DevInsurer, "", "liability-claim-handling", "liability-risk-analysis", "HQUALIMP"),
		u("auditor", "auditeur-dpo", "", "", "HCOMPL"),
		u("researcher", "chercheur", "", "", "HRESCH"),
		u("public-health", "ars-idf", DevAuthority, "", "PUBHLTH", "POPHLTH", "rupture-reporting"),
		u("patient", "patient-demo", "", "", "PATRQT"),
	}
}

// WriteDevTokens mints one token per actor type and writes
// dataDir/dev-tokens.json: {"<actor_type>": "<jwt>", …}. The patient
// actor's token names patient; without one (no patient known yet) it is
// left out: a patient token without its patient is refused by every
// request (parcours token --actor patient --patient Patient/<id> mints one).
func WriteDevTokens(dataDir string, secret []byte, ttl time.Duration, patient string) (map[string]string, error) {
	tokens := map[string]string{}
	for _, c := range DevUsers() {
		if c.ActorType == "patient" {
			if patient == "" {
				continue
			}
			c.Patient = patient
		}
		t, err := Mint(secret, c, ttl)
		if err != nil {
			return nil, err
		}
		tokens[c.ActorType] = t
	}
	b, err := json.MarshalIndent(tokens, "", "  ")
	if err != nil {
		return nil, err
	}
	return tokens, os.WriteFile(filepath.Join(dataDir, DevTokensFile), append(b, '\n'), 0o600)
}
