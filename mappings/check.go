package mappings

import (
	"encoding/json"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/outcome"
)

// DateLayout is the date format of every native file.
const DateLayout = "2006-01-02"

var (
	reDate    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	reDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

	// Code formats (domain brief §1.3, §2.1).
	ReFINESS = regexp.MustCompile(`^(?:[0-9]{2}|2[AB])[0-9]{7}$`)
	ReRPPS   = regexp.MustCompile(`^[0-9]{11}$`)
	ReCIM10  = regexp.MustCompile(`^[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?$`)
	ReCCAM   = regexp.MustCompile(`^[A-Z]{4}[0-9]{3}$`)
	ReGHM    = regexp.MustCompile(`^[0-9]{2}[CKMZ][0-9]{2}[1-4A-DEJTZ]$`) // TODO(verify) [K] severity letters
	ReNGAP   = regexp.MustCompile(`^[A-Z][A-Z0-9]{0,5}$`)
	// ATC: one of the 14 anatomical main groups (WHO), then levels 2 to 5.
	ReATC   = regexp.MustCompile(`^[ABCDGHJLMNPRSV](?:[0-9]{2}(?:[A-Z](?:[A-Z](?:[0-9]{2})?)?)?)?$`)
	ReCIP13 = regexp.MustCompile(`^[0-9]{13}$`)
	ReNABM  = regexp.MustCompile(`^[0-9]{4}$`) // TODO(verify) [K]
	ReLOINC = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)
	ReID    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// UCUM units: a conservative character set, not a UCUM parser (Row.Unit
	// checks units against the hub's list of UCUM codes instead).
	ReUCUM     = regexp.MustCompile(`^[A-Za-z0-9%{}\[\]/.*^'_-]{1,32}$`)
	rePostcode = regexp.MustCompile(`^[0-9]{5}$`)
)

// value is the value of a field when it is there, or "" with ok=true when
// it is empty and optional. An empty required field is an issue.
func (r *Row) value(name string, required bool) (string, bool) {
	v := r.Text(name)
	if v == "" && required {
		r.Fail(name, outcome.CodeRequired, "%s is required", name)
		return "", false
	}
	return v, true
}

// Required is the value of a required field.
func (r *Row) Required(name string) (string, bool) { return r.value(name, true) }

// Match checks a field against a format; what names the format in the
// diagnostics.
func (r *Row) Match(name string, required bool, re *regexp.Regexp, what string) (string, bool) {
	v, ok := r.value(name, required)
	if !ok || v == "" {
		return v, ok
	}
	if !re.MatchString(v) {
		r.Fail(name, outcome.CodeValue, "%s is not a valid %s", name, what)
		return "", false
	}
	return v, true
}

// Date checks a YYYY-MM-DD date that is not after the upload date.
func (r *Row) Date(name string, required bool) (string, bool) {
	v, ok := r.AnyDate(name, required)
	if ok && v != "" && r.today != "" && v > r.today {
		r.Fail(name, outcome.CodeValue, "%s is after the date of the upload", name)
		return "", false
	}
	return v, ok
}

// AnyDate checks a YYYY-MM-DD date, future dates allowed.
func (r *Row) AnyDate(name string, required bool) (string, bool) {
	v, ok := r.value(name, required)
	if !ok || v == "" {
		return v, ok
	}
	if !IsDate(v) {
		if reDate.MatchString(v) && v < MinDate {
			if _, err := time.Parse(DateLayout, v); err == nil {
				r.Fail(name, outcome.CodeValue, "%s is before %s", name, MinDate)
				return "", false
			}
		}
		r.Fail(name, outcome.CodeValue, "%s is not a date (YYYY-MM-DD)", name)
		return "", false
	}
	return v, true
}

// MinDate is the earliest date a native file may hold.
const MinDate = "1900-01-01"

// IsDate reports whether s is a real calendar date written YYYY-MM-DD.
func IsDate(s string) bool {
	if !reDate.MatchString(s) {
		return false
	}
	_, err := time.Parse(DateLayout, s)
	return err == nil && s >= MinDate
}

// Unit is a unit of measure as a native file wrote it (Text) and its UCUM
// code (UCUM) when the unit is on the hub's list (vocab.UCUMUnit), else "".
type Unit struct{ Text, UCUM string }

// MaxUnitLength bounds a unit's text (characters).
const MaxUnitLength = 32

// Unit reads a unit of measure. UCUM is case-sensitive and a lab's "UI/L"
// or "x" is not UCUM: storing the raw text as a UCUM code would make
// Quantities that claim a unit they do not have (and that no UCUM-aware
// reader converts). So a unit on the hub's list (vocab.UCUMUnit: the UCUM
// codes of French lab reporting and the unambiguous spellings of some, UI/L
// → [IU]/L) gets its UCUM code, and any other text is kept as written for
// Quantity.unit only, without system or code (Unit.Put), rather than
// refused: the contract (DESIGN §6) asks for a unit, not for a UCUM code. A
// unit must still be text: at most MaxUnitLength printable characters.
func (r *Row) Unit(name string, required bool) (Unit, bool) {
	v, ok := r.value(name, required)
	if !ok || v == "" {
		return Unit{}, ok
	}
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxUnitLength || strings.TrimSpace(v) != v || strings.IndexFunc(v, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0 {
		r.Fail(name, outcome.CodeValue, "%s must be a unit of at most %d printable characters", name, MaxUnitLength)
		return Unit{}, false
	}
	code, _ := vocab.UCUMUnit(v)
	return Unit{Text: v, UCUM: code}, true
}

// Put sets the unit of the FHIR Quantity q: unit = the text as written,
// system and code only when the unit is a known UCUM code.
func (u Unit) Put(q map[string]any) {
	if u.Text == "" {
		return
	}
	q["unit"] = u.Text
	if u.UCUM != "" {
		q["system"], q["code"] = vocab.SystemUCUM, u.UCUM
	}
}

// OneOf checks a field against a list of allowed values.
func (r *Row) OneOf(name string, required bool, allowed ...string) (string, bool) {
	v, ok := r.value(name, required)
	if !ok || v == "" {
		return v, ok
	}
	for _, a := range allowed {
		if v == a {
			return v, true
		}
	}
	r.Fail(name, outcome.CodeValue, "%s must be one of %s", name, strings.Join(allowed, ", "))
	return "", false
}

// Decimal checks a decimal number ('.' separator) within [min, max]; the
// result keeps its lexical form.
func (r *Row) Decimal(name string, required bool, min, max float64) (json.Number, bool) {
	v, ok := r.value(name, required)
	if !ok || v == "" {
		return "", ok
	}
	if !reDecimal.MatchString(v) {
		if strings.Contains(v, ",") {
			r.Fail(name, outcome.CodeValue, "%s is not a decimal number (use '.' as the decimal separator)", name)
		} else {
			r.Fail(name, outcome.CodeValue, "%s is not a decimal number", name)
		}
		return "", false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < min || f > max {
		r.Fail(name, outcome.CodeValue, "%s is out of range (%s to %s)", name, fmtFloat(min), fmtFloat(max))
		return "", false
	}
	return json.Number(v), true
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Integer checks a whole number within [min, max].
func (r *Row) Integer(name string, required bool, min, max int) (int, bool) {
	v, ok := r.value(name, required)
	if !ok || v == "" {
		return 0, ok
	}
	n, err := strconv.Atoi(v)
	if err != nil || !reDecimal.MatchString(v) {
		r.Fail(name, outcome.CodeValue, "%s is not a whole number", name)
		return 0, false
	}
	if n < min || n > max {
		r.Fail(name, outcome.CodeValue, "%s is out of range (%d to %d)", name, min, max)
		return 0, false
	}
	return n, true
}

// Bool reads a boolean: a JSON boolean, or true/false/1/0 in text. set is
// false for an empty optional field.
func (r *Row) Bool(name string, required bool) (val, set, ok bool) {
	v, ok := r.value(name, required)
	if !ok || v == "" {
		return false, false, ok
	}
	switch v {
	case "true", "1":
		return true, true, true
	case "false", "0":
		return false, true, true
	}
	r.Fail(name, outcome.CodeValue, "%s must be true or false", name)
	return false, false, false
}

// Sex reads the sex column: 1, M or H is male, 2 or F female (PMSI codes
// and their letters). It returns the FHIR gender.
func (r *Row) Sex(name string) (string, bool) {
	v, ok := r.Required(name)
	if !ok {
		return "", false
	}
	switch strings.ToUpper(v) {
	case "1", "M", "H":
		return "male", true
	case "2", "F":
		return "female", true
	}
	r.Fail(name, outcome.CodeValue, "%s must be 1 (or M, H) for male or 2 (or F) for female", name)
	return "", false
}

// Postcode checks an optional French postcode (5 digits).
func (r *Row) Postcode(name string) (string, bool) {
	return r.Match(name, false, rePostcode, "French postcode (5 digits)")
}

// INS checks an optional INS-NIR. Empty is allowed (the patient will be
// unlinked); a value must be a valid INS-NIR. The result is normalised
// (2a/2b upper-cased).
func (r *Row) INS(name string) (string, bool) {
	v := strings.ToUpper(r.Text(name))
	if v == "" {
		return "", true
	}
	switch INSProblem(v) {
	case "":
		return v, true
	case "key":
		r.Fail(name, outcome.CodeValue, "%s key does not match the NIR (key = 97 - NIR mod 97)", name)
	default:
		r.Fail(name, outcome.CodeValue, "%s is not an INS-NIR (15 characters: 13-character NIR and 2-digit key)", name)
	}
	return "", false
}

// ValidINS reports whether s is a valid INS-NIR.
func ValidINS(s string) bool { return INSProblem(s) == "" }

// INSProblem explains why s is not a valid INS-NIR: "" when it is, "format"
// or "key". The NIR is sex (1 or 2), year, month, département (2 digits, or
// 2A/2B for Corsica), commune, order; the key is 97 - (NIR mod 97), with
// 2A counted as 19 and 2B as 18.
func INSProblem(s string) string {
	if len(s) != 15 {
		return "format"
	}
	nir, key := s[:13], s[13:]
	n := nir
	switch nir[5:7] {
	case "2A":
		n = nir[:5] + "19" + nir[7:] // TODO(verify) [K] Corsica rule
	case "2B":
		n = nir[:5] + "18" + nir[7:]
	}
	if !allDigits(n) || !allDigits(key) {
		return "format"
	}
	if n[0] != '1' && n[0] != '2' { // TODO(verify) [K] 7/8 are NIA (another system)
		return "format"
	}
	v, _ := new(big.Int).SetString(n, 10)
	want := 97 - new(big.Int).Mod(v, big.NewInt(97)).Int64()
	got, _ := strconv.Atoi(key)
	if int64(got) != want {
		return "key"
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// INSKey computes the key of a 13-character NIR (for fixtures and demo data).
func INSKey(nir string) string {
	n := nir
	switch {
	case len(nir) == 13 && nir[5:7] == "2A":
		n = nir[:5] + "19" + nir[7:]
	case len(nir) == 13 && nir[5:7] == "2B":
		n = nir[:5] + "18" + nir[7:]
	}
	v, ok := new(big.Int).SetString(n, 10)
	if !ok {
		return ""
	}
	k := 97 - new(big.Int).Mod(v, big.NewInt(97)).Int64()
	return strconv.FormatInt(100+k, 10)[1:]
}

// ValidCIP13 reports whether s is a CIP13 code with a correct EAN-13 check digit.
func ValidCIP13(s string) bool {
	if !ReCIP13.MatchString(s) {
		return false
	}
	sum := 0
	for i := 0; i < 12; i++ {
		d := int(s[i] - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return (10-sum%10)%10 == int(s[12]-'0')
}

// ValidLOINC reports whether s is a LOINC code with a correct mod-10 check digit.
func ValidLOINC(s string) bool {
	if !ReLOINC.MatchString(s) {
		return false
	}
	body := s[:len(s)-2]
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[len(body)-1-i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10-sum%10)%10 == int(s[len(s)-1]-'0')
}

// NormalizeCIM10 writes a CIM-10 code in its dotted form (I509 → I50.9).
func NormalizeCIM10(code string) string {
	c := strings.ReplaceAll(code, ".", "")
	if len(c) > 3 {
		return c[:3] + "." + c[3:]
	}
	return c
}

// MaxListItems bounds the items of one '|'-separated cell: each item may
// become a resource, and a row must not turn a small file into millions of
// them (a black-box review stored 200 000 Conditions from one 1.2 MB row).
// An RSS lists far fewer diagnoses and acts.
var MaxListItems = 1000

// List splits a '|'-separated field into trimmed items. An empty item is an
// issue, and so are more than MaxListItems items; an empty field is an
// empty list.
func (r *Row) List(name string) ([]string, bool) {
	v := r.Text(name)
	if v == "" {
		return nil, true
	}
	if n := strings.Count(v, "|") + 1; n > MaxListItems {
		r.Fail(name, outcome.CodeTooLong, "%s lists %d items, at most %d are accepted", name, n, MaxListItems)
		return nil, false
	}
	items := strings.Split(v, "|")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
		if items[i] == "" {
			r.Fail(name, outcome.CodeValue, "%s item %d is empty", name, i+1)
			return nil, false
		}
	}
	return items, true
}
