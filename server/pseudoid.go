package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"sync"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
)

// A pseudonymised caller sees every resource under an id of its purpose
// domain, so that one resource read in two domains does not link their
// pseudonyms, and reads it back by that id only: the hub's own id answers
// 404 to it, as the pseudonyms answer 404 to everybody else (shownAs).
// Ids the hub assigns are UUIDs, and a resource's pseudonym is its UUID
// encrypted: one AES-256 block under a key derived from the domain's
// pseudonymisation key, tweaked by the resource type — "r-" and 26 base32
// characters, which the hub decrypts to find the resource again
// (resolvePseudonym). A Patient's pseudonym is its INS-NIR encrypted the
// same way ("p-"), so that one person has one pseudonym across sources and
// the hub finds the Patient by its identifier; without an INS-NIR, its
// UUID. Other ids (chosen by clients) get a keyed hash, "r-" or "p-" and
// 24 hex characters, shown but not resolvable.

// pseudoIDEncoding writes encrypted ids in characters valid in a FHIR id.
var pseudoIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// pseudoIDLen is the length of an encrypted id: "r-" or "p-" and one AES
// block.
const pseudoIDLen = 2 + 26

// pseudonymDomains are the domains whose pseudonyms resolvePseudonym
// tries: those of the pseudonymise obligation (the audit domain names
// patients for auditors only).
var pseudonymDomains = []string{"care", "research", "liability"}

// idCipher is a domain's cipher of ids and its per-type tweaks.
type idCipher struct {
	block  cipher.Block
	key    []byte
	tweaks sync.Map // resource type → [16]byte
}

func newIDCipher(domainKey []byte) *idCipher {
	mac := hmac.New(sha256.New, domainKey)
	mac.Write([]byte("resource-id-cipher"))
	key := mac.Sum(nil)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	return &idCipher{block: block, key: key}
}

func (c *idCipher) tweak(typ string) [16]byte {
	if t, ok := c.tweaks.Load(typ); ok {
		return t.([16]byte)
	}
	mac := hmac.New(sha256.New, c.key)
	mac.Write([]byte("type:" + typ))
	var t [16]byte
	copy(t[:], mac.Sum(nil))
	c.tweaks.Store(typ, t)
	return t
}

// seal encrypts a block of typ into an id with prefix ("r-", "p-").
func (c *idCipher) seal(prefix, typ string, u [16]byte) string {
	t := c.tweak(typ)
	for i := range u {
		u[i] ^= t[i]
	}
	c.block.Encrypt(u[:], u[:])
	return prefix + pseudoIDEncoding.EncodeToString(u[:])
}

// open decrypts an encrypted id of typ (false if id is not one).
func (c *idCipher) open(typ, id string) ([16]byte, bool) {
	var u [16]byte
	if len(id) != pseudoIDLen || id[1] != '-' {
		return u, false
	}
	n, err := pseudoIDEncoding.Decode(u[:], []byte(id[2:]))
	if err != nil || n != len(u) {
		return u, false
	}
	c.block.Decrypt(u[:], u[:])
	t := c.tweak(typ)
	for i := range u {
		u[i] ^= t[i]
	}
	return u, true
}

// resourcePseudonym is the id a pseudonymised caller of domain sees for a
// resource ("Type/id") other than a Patient.
func (s *Server) resourcePseudonym(domain, ref string) string {
	typ, id, _ := strings.Cut(ref, "/")
	if u, ok := store.ParseUUID(id); ok {
		return s.keys.cipher(domain).seal("r-", typ, u)
	}
	mac := hmac.New(sha256.New, s.keys.key(domain))
	mac.Write([]byte("resource:" + ref))
	return "r-" + hex.EncodeToString(mac.Sum(nil)[:12])
}

// insTweak is the tweak of encrypted INS-NIRs: an INS-NIR (15 characters)
// and the byte insMark make the block.
const (
	insTweak = "INS-NIR"
	insMark  = 0x80
)

// resolvePseudonym returns the hub id of the stored typ resource whose
// pseudonym in one of the domains is id, and that domain; id itself and
// "" when id is no such pseudonym.
func (s *Server) resolvePseudonym(tx *store.Tx, typ, id string) (hubID, domain string) {
	if len(id) != pseudoIDLen || typ == "Patient" && !strings.HasPrefix(id, "p-") || typ != "Patient" && !strings.HasPrefix(id, "r-") {
		return id, ""
	}
	for _, d := range pseudonymDomains {
		c := s.keys.cipher(d)
		if typ == "Patient" {
			if b, ok := c.open(insTweak, id); ok && b[15] == insMark && mappings.ValidINS(string(b[:15])) {
				if ids := tx.Lookup("Patient", "identifier", insSystem+"|"+string(b[:15])); len(ids) > 0 {
					return ids[0], d // several Patients with one INS: one person
				}
			}
		}
		u, ok := c.open(typ, id)
		if !ok {
			return id, ""
		}
		hid := store.FormatUUID(u)
		if _, err := tx.Get(typ, hid); err == nil { // current or deleted
			return hid, d
		}
	}
	return id, ""
}

// asNamed is the answer to a decision on a resource the caller named by a
// pseudonym of domain shownIn ("": by its hub id): 404 when the decision
// does not name it that way (shownAs), and for any refusal of a resource
// named by a pseudonym (its reasons would tell that the pseudonym names
// something; the decision is recorded all the same).
func asNamed(d policy.Decision, err error, shownIn string) error {
	switch {
	case err != nil && shownIn != "":
		return store.ErrNotFound
	case err != nil:
		return err
	case !shownAs(d, shownIn):
		return store.ErrNotFound
	}
	return nil
}

// shownAs reports whether a resource named by a pseudonym of domain (""
// for its hub id) was named as decision d shows it: by the pseudonyms of
// its domain when d pseudonymises, by the hub's ids otherwise.
func shownAs(d policy.Decision, domain string) bool {
	p, pseudo := d.Obligation("pseudonymise")
	if !pseudo {
		return domain == ""
	}
	return domain == pseudoDomain(p.Domain)
}
