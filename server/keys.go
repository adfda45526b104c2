package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/parcours-sante/parcours/server/store"
)

// keyring holds the pseudonymisation keys, one per purpose domain (audit,
// research, liability, care), so that pseudonyms of two domains cannot be
// linked without the keys (domain brief §4.7). They live in the data
// directory (pseudonym-keys.json, mode 0600), created on first start; a
// deployment on HDS hosting would keep them in its KMS.
type keyring struct {
	path    string
	keys    map[string][]byte // read-only after loadKeyring
	ciphers sync.Map          // domain → *idCipher (pseudoid.go)
}

// keyDomains are created at start-up.
var keyDomains = []string{"audit", "care", "research", "liability"}

func loadKeyring(dataDir string) (*keyring, error) {
	k := &keyring{path: filepath.Join(dataDir, "pseudonym-keys.json"), keys: map[string][]byte{}}
	b, err := os.ReadFile(k.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("pseudonym keys: %w", err)
	default:
		var hexKeys map[string]string
		if err := json.Unmarshal(b, &hexKeys); err != nil {
			return nil, fmt.Errorf("pseudonym keys %s: %w", k.path, err)
		}
		for d, h := range hexKeys {
			if k.keys[d], err = hex.DecodeString(h); err != nil {
				return nil, fmt.Errorf("pseudonym key %s: %w", d, err)
			}
		}
	}
	missing := false
	for _, d := range keyDomains {
		if _, ok := k.keys[d]; !ok {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, err
			}
			k.keys[d], missing = key, true
		}
	}
	if missing {
		out := map[string]string{}
		for d, v := range k.keys {
			out[d] = hex.EncodeToString(v)
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		tmp := k.path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return nil, fmt.Errorf("pseudonym keys: %w", err)
		}
		if err := os.Rename(tmp, k.path); err != nil {
			return nil, fmt.Errorf("pseudonym keys: %w", err)
		}
	}
	return k, nil
}

// key returns the key of a domain; a domain without its own key gets one
// derived from the audit key (stable, never written).
func (k *keyring) key(domain string) []byte {
	if key, ok := k.keys[domain]; ok {
		return key
	}
	mac := hmac.New(sha256.New, k.keys["audit"])
	mac.Write([]byte("domain:" + domain))
	return mac.Sum(nil)
}

// pseudonym is HMAC-SHA256(key of domain, subject), shortened: the
// auditors' and researchers' stable patient pseudonym (domain brief §4.7).
func (k *keyring) pseudonym(domain, subject string) string {
	mac := hmac.New(sha256.New, k.key(domain))
	mac.Write([]byte(subject))
	return "p-" + hex.EncodeToString(mac.Sum(nil)[:12])
}

// isKeyedPseudonym reports whether v has the shape pseudonym gives: "p-"
// and 24 lower-case hexadecimal digits (the auditors' pseudonyms).
func isKeyedPseudonym(v string) bool {
	if len(v) != 26 || !strings.HasPrefix(v, "p-") {
		return false
	}
	for _, c := range v[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// cipher is the id cipher of a domain (pseudoid.go).
func (k *keyring) cipher(domain string) *idCipher {
	if c, ok := k.ciphers.Load(domain); ok {
		return c.(*idCipher)
	}
	c, _ := k.ciphers.LoadOrStore(domain, newIDCipher(k.key(domain)))
	return c.(*idCipher)
}

// patientPseudonym is the pseudonym in domain of the Patient id whose
// index entries are entries. In the domains of the pseudonymise obligation
// (pseudonymDomains) it is encrypted, so that the hub finds the Patient
// again: its INS-NIR (the least, if several) when it has one, its UUID
// otherwise. In the others (the auditors'), and for an id that is no UUID,
// a keyed hash of the INS-NIR or of the reference.
func (k *keyring) patientPseudonym(domain, id string, entries []store.IndexEntry) string {
	ins := ""
	for _, e := range entries {
		if v, ok := strings.CutPrefix(e.Value, insSystem+"|"); ok && e.Param == "identifier" && v != "" && (ins == "" || v < ins) {
			ins = v
		}
	}
	if slices.Contains(pseudonymDomains, domain) {
		if len(ins) == 15 {
			var b [16]byte
			copy(b[:], ins)
			b[15] = insMark
			return k.cipher(domain).seal("p-", insTweak, b)
		}
		if u, ok := store.ParseUUID(id); ok && ins == "" {
			return k.cipher(domain).seal("p-", "Patient", u)
		}
	}
	if ins != "" {
		return k.pseudonym(domain, ins)
	}
	return k.pseudonym(domain, "Patient/"+id)
}
