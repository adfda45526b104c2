package mappings

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/store"
)

// namespace is the UUIDv5 namespace of Parcours' bundle fullUrls.
var namespace = [16]byte{0x5b, 0x2e, 0x7c, 0x1a, 0x93, 0x4d, 0x4f, 0x61, 0x8a, 0x0c, 0x6e, 0x21, 0xd4, 0x47, 0x90, 0x3f}

// uuid5 is an RFC 9562 version 5 (SHA-1, name-based) UUID.
func uuid5(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return store.FormatUUID(u)
}

// Identifier is a FHIR identifier (system and value).
type Identifier struct{ System, Value string }

// Map renders the identifier.
func (i Identifier) Map() map[string]any { return map[string]any{"system": i.System, "value": i.Value} }

// Criteria is the identifier search of a conditional create.
func (i Identifier) Criteria() string { return "identifier=" + i.System + "|" + i.Value }

// Ref is a logical reference by identifier.
func (i Identifier) Ref() map[string]any { return map[string]any{"identifier": i.Map()} }

// ParseIdentifier splits "system|value" (the token's org claim).
func ParseIdentifier(s string) (Identifier, bool) {
	sys, val, ok := strings.Cut(s, "|")
	if !ok || sys == "" || val == "" {
		return Identifier{Value: s}, false
	}
	return Identifier{System: sys, Value: val}, true
}

// Ref is a literal reference to a fullUrl.
func Ref(fullURL string) map[string]any { return map[string]any{"reference": fullURL} }

// Person is a patient as a source describes it.
type Person struct {
	// INS is a valid INS-NIR, or "" for an unlinked patient.
	INS                           string
	BirthDate, Gender, PostalCode string
	// Local is the person's number in the source (a programme member
	// number): an unlinked patient is matched on it when present.
	Local *Identifier
	// Key tells unlinked patients without Local apart (the row's key).
	Key string
	// Others are more local numbers of the same linked person in the
	// file (other programmes), in file order: the Patient entry carries
	// them all from the start, whichever chunk of the file it is in.
	Others []Identifier
}

// Batch assembles the transaction Bundle of one file, or its chunks: each
// call of Bundle returns the entries added since the previous one. The
// reference data and patients of the file are added once, in the first
// chunk that needs them (later chunks refer to their fullUrl).
type Batch struct {
	source, digest string
	opt            Options
	// seen is the file's: the dedup keys of the entries added so far, one
	// per distinct patient and reference resource (16 bytes each: their
	// fullUrl is computed again when needed).
	seen map[Key]struct{}
	// The current chunk.
	chunk    int
	shared   int // of the last Bundle: its reference data and patients
	refData  []any
	people   []any
	facts    []any
	patients map[string]map[string]any
	targets  []any
	// line is the line of the row being built (Run sets it), lines that
	// of each fact of the chunk.
	line  int
	lines []int
}

// NewBatch starts the Bundle of a file of a source; digest is the hex
// SHA-256 of the file.
func NewBatch(source, digest string, opt Options) *Batch {
	return &Batch{source: source, digest: digest, opt: opt, seen: map[Key]struct{}{}, patients: map[string]map[string]any{}}
}

// FullURL is the deterministic urn:uuid of an entry.
func (b *Batch) FullURL(kind, key string) string {
	return "urn:uuid:" + uuid5(namespace, b.digest+"|"+b.source+"|"+kind+"|"+key)
}

func entry(fullURL string, res map[string]any, ifNoneExist string) map[string]any {
	req := map[string]any{"method": "POST", "url": res["resourceType"]}
	if ifNoneExist != "" {
		req["ifNoneExist"] = ifNoneExist
	}
	return map[string]any{"fullUrl": fullURL, "resource": res, "request": req}
}

// Patient adds a patient once per person and returns its fullUrl.
func (b *Batch) Patient(p Person) string {
	var key, criteria string
	switch {
	case p.INS != "":
		key = "ins|" + p.INS
		criteria = "identifier=" + vocab.SidINSNIR + "|" + p.INS
	case p.Local != nil:
		key = "local|" + p.Local.System + "|" + p.Local.Value
		criteria = p.Local.Criteria()
	default:
		key = "row|" + p.Key
	}
	seenKey := KeyOf("Patient|" + key)
	if _, ok := b.seen[seenKey]; ok {
		u := b.FullURL("Patient", key)
		// The same person under another local number (another programme):
		// the one Patient entry carries both.
		if res := b.patients[u]; p.Local != nil && res != nil {
			ids, _ := res["identifier"].([]any)
			for _, id := range ids {
				if m := id.(map[string]any); m["system"] == p.Local.System && m["value"] == p.Local.Value {
					return u
				}
			}
			res["identifier"] = append(ids, map[string]any{"use": "secondary", "system": p.Local.System, "value": p.Local.Value})
		}
		return u
	}
	u := b.FullURL("Patient", key)
	b.seen[seenKey] = struct{}{}
	res := map[string]any{"resourceType": "Patient"}
	var ids []any
	if p.INS != "" {
		ids = append(ids, map[string]any{
			"use":    "official",
			"type":   map[string]any{"coding": []any{map[string]any{"system": vocab.SystemFRCoreV20203, "code": "INS-NIR"}}},
			"system": vocab.SidINSNIR,
			"value":  p.INS,
		})
	} else {
		res["meta"] = map[string]any{"tag": []any{map[string]any{
			"system": vocab.IdentityLinkageSystem, "code": "unlinked", "display": "Identité non rattachée",
		}}}
	}
	if p.Local != nil {
		ids = append(ids, map[string]any{"use": "secondary", "system": p.Local.System, "value": p.Local.Value})
	}
	for _, o := range p.Others {
		if p.Local == nil || o != *p.Local {
			ids = append(ids, map[string]any{"use": "secondary", "system": o.System, "value": o.Value})
		}
	}
	if criteria == "" {
		// An unlinked patient without a local number is this source
		// record's patient: uploading the file again finds it.
		value := b.recordID(b.source + "|Patient|" + key)
		ids = append(ids, map[string]any{"use": "secondary", "system": SourceRecordSystem, "value": value})
		criteria = "identifier=" + SourceRecordSystem + "|" + value
	}
	if ids != nil {
		res["identifier"] = ids
	}
	if p.Gender != "" {
		res["gender"] = p.Gender
	}
	if p.BirthDate != "" {
		res["birthDate"] = p.BirthDate
	}
	if p.PostalCode != "" {
		res["address"] = []any{map[string]any{"postalCode": p.PostalCode, "country": "FR"}}
	}
	b.patients[u] = res
	b.people = append(b.people, entry(u, res, criteria))
	return u
}

// Conditional adds a reference-data resource (Organization, Practitioner,
// PractitionerRole) once, as a conditional create on its identifier.
func (b *Batch) Conditional(id Identifier, res map[string]any) string {
	typ, _ := res["resourceType"].(string)
	key := KeyOf(typ + "|" + id.System + "|" + id.Value)
	u := b.FullURL(typ, id.System+"|"+id.Value)
	if _, ok := b.seen[key]; ok {
		return u
	}
	b.seen[key] = struct{}{}
	if _, ok := res["identifier"]; !ok {
		res["identifier"] = []any{id.Map()}
	}
	b.refData = append(b.refData, entry(u, res, id.Criteria()))
	return u
}

// Organization adds an organisation by identifier (FINESS, SIREN…).
func (b *Batch) Organization(id Identifier) string {
	return b.Conditional(id, map[string]any{"resourceType": "Organization", "active": true})
}

// Practitioner adds a practitioner by RPPS number.
func (b *Batch) Practitioner(rpps string) string {
	id := Identifier{System: vocab.SidRPPS, Value: rpps}
	return b.Conditional(id, map[string]any{
		"resourceType": "Practitioner",
		"identifier": []any{map[string]any{
			"type":   map[string]any{"coding": []any{map[string]any{"system": vocab.SystemFRCoreV20203, "code": "RPPS"}}},
			"system": vocab.SidRPPS,
			"value":  rpps,
		}},
	})
}

// Fact adds a clinical or financial fact with its pathway stage: the stage
// extension comes first among the resource's extensions. key must be
// unique in the batch for this resource type.
func (b *Batch) Fact(res map[string]any, key string, st vocab.StageCoding) string {
	ext, _ := res["extension"].([]any)
	res["extension"] = append([]any{st.Extension()}, ext...)
	return b.Record(res, key)
}

// Record adds a resource that is not a fact (a Consent): no stage, but a
// Provenance target like the facts. Every record carries a source-record
// identifier (source and key) and is a conditional create on it, so that
// uploading a file again stores nothing twice.
func (b *Batch) Record(res map[string]any, key string) string {
	typ, _ := res["resourceType"].(string)
	u := b.FullURL(typ, key)
	value := b.recordID(b.source + "|" + typ + "|" + key)
	ident := map[string]any{"system": SourceRecordSystem, "value": value}
	criteria := "identifier=" + SourceRecordSystem + "|" + value
	switch ids := res["identifier"].(type) {
	case []any:
		res["identifier"] = append(ids, ident)
	case map[string]any: // a 0..1 identifier the source already gives
		sys, _ := ids["system"].(string)
		val, _ := ids["value"].(string)
		criteria = "identifier=" + sys + "|" + val
	case nil:
		if identifierIsList(typ) {
			res["identifier"] = []any{ident}
		} else {
			res["identifier"] = ident
		}
	}
	b.facts = append(b.facts, entry(u, res, criteria))
	b.lines = append(b.lines, b.line)
	b.targets = append(b.targets, Ref(u))
	return u
}

// recordID is the value of the source-record identifier of name: keyed
// with Options.RecordKey when set (HMAC-SHA256, a UUID of version 8),
// name-based (UUIDv5) otherwise.
func (b *Batch) recordID(name string) string {
	if len(b.opt.RecordKey) == 0 {
		return uuid5(namespace, name)
	}
	mac := hmac.New(sha256.New, b.opt.RecordKey)
	mac.Write([]byte(name))
	var u [16]byte
	copy(u[:], mac.Sum(nil))
	u[6] = u[6]&0x0f | 0x80 // version 8: custom
	u[8] = u[8]&0x3f | 0x80
	return store.FormatUUID(u)
}

// SourceRecordSystem identifies a fact by the native record it came from.
const SourceRecordSystem = "https://example.org/fhir/NamingSystem/parcours-source-record"

// identifierIsList reports whether Type.identifier repeats (0..*); a few
// R4 types have a single identifier.
func identifierIsList(typ string) bool {
	switch typ {
	case "AdverseEvent", "QuestionnaireResponse", "Bundle", "Composition":
		return false
	}
	return true
}

// Len is the number of facts and records added.
func (b *Batch) Len() int { return len(b.facts) }

// entries is the number of entries of the current chunk.
func (b *Batch) entries() int { return len(b.refData) + len(b.people) + len(b.facts) }

// Bundle returns the transaction Bundle of the entries added since the
// previous call (the whole file, or one chunk of it) with their Provenance,
// or nil when they hold no fact (the entries then stay for the next call).
// The next entries start the next chunk.
func (b *Batch) Bundle() map[string]any {
	if len(b.facts) == 0 {
		return nil
	}
	defer func() {
		b.chunk++
		b.refData, b.people, b.facts, b.targets, b.lines = nil, nil, nil, nil, nil
		clear(b.patients)
	}()
	b.shared = len(b.refData) + len(b.people)
	entries := make([]any, 0, len(b.refData)+len(b.people)+len(b.facts)+1)
	entries = append(entries, b.refData...)
	entries = append(entries, b.people...)
	entries = append(entries, b.facts...)
	key := "batch"
	if b.chunk > 0 {
		key = "batch|" + strconv.Itoa(b.chunk)
	}
	entries = append(entries, entry(b.FullURL("Provenance", key), b.provenance(), ""))
	return map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries}
}

func (b *Batch) provenance() map[string]any {
	author := map[string]any{
		"type": map[string]any{"coding": []any{map[string]any{"system": vocab.SystemProvenanceAgent, "code": "author", "display": "Author"}}},
	}
	if id, ok := ParseIdentifier(b.opt.Org); ok {
		author["who"] = id.Ref()
	} else {
		author["who"] = map[string]any{"display": "uploader of the " + b.source + " file"}
	}
	if b.opt.Actor != "" {
		role := vocab.Coding{System: vocab.ActorTypeSystem, Code: b.opt.Actor}
		if c, ok := vocab.Lookup(vocab.ActorTypeSystem, b.opt.Actor); ok {
			role.Display = c.Display
		}
		author["role"] = []any{map[string]any{"coding": []any{role.Map()}}}
	}
	assembler := map[string]any{
		"type": map[string]any{"coding": []any{map[string]any{"system": vocab.SystemProvenanceAgent, "code": "assembler", "display": "Assembler"}}},
		"who":  map[string]any{"display": "Parcours mapping " + b.source},
	}
	return map[string]any{
		"resourceType": "Provenance",
		"target":       b.targets,
		"recorded":     b.opt.now().Format("2006-01-02T15:04:05.999999999Z07:00"),
		"activity": map[string]any{
			"coding": []any{map[string]any{"system": vocab.SystemDataOperation, "code": "CREATE", "display": "create"}},
			"text":   "ingest of a " + b.source + " file",
		},
		"agent": []any{author, assembler},
		"entity": []any{map[string]any{
			"role": "source",
			"what": map[string]any{
				"identifier": map[string]any{"system": vocab.SidNativeFile, "value": b.digest},
				"display":    b.source + " file",
			},
		}},
	}
}

// Digest is the hex SHA-256 of a file.
func Digest(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
