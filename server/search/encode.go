package search

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// maxValue caps the length of an index value (bbolt keys stay small).
const maxValue = 512

func clip(s string) string {
	if len(s) <= maxValue {
		return s
	}
	cut := maxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Normalize is how string values are compared: lower case, accents and
// other combining marks removed, spaces trimmed and collapsed.
func Normalize(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	write := func(r rune) {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			return
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	if ascii {
		for i := 0; i < len(s); i++ {
			write(rune(s[i]))
		}
		return clip(b.String())
	}
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		switch r { // letters NFD does not decompose
		case 'ß':
			write('s')
			r = 's'
		case 'æ', 'Æ':
			write('a')
			r = 'e'
		case 'œ', 'Œ':
			write('o')
			r = 'e'
		case 'ø', 'Ø':
			r = 'o'
		case 'đ', 'Đ':
			r = 'd'
		case 'ł', 'Ł':
			r = 'l'
		}
		write(r)
	}
	return clip(b.String())
}

// EncodeNumber encodes a number so that the byte order of the encodings
// is the numeric order: 16 hex digits of the IEEE bits, sign flipped.
func EncodeNumber(f float64) string {
	if f == 0 {
		f = 0 // -0 and +0 encode alike
	}
	bits := math.Float64bits(f)
	if bits&(1<<63) != 0 {
		bits = ^bits
	} else {
		bits |= 1 << 63
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], bits)
	return hex.EncodeToString(b[:])
}

// DecodeNumber is the inverse of EncodeNumber.
func DecodeNumber(s string) (float64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return 0, false
	}
	bits := binary.BigEndian.Uint64(b[:])
	if bits&(1<<63) != 0 {
		bits &^= 1 << 63
	} else {
		bits = ^bits
	}
	return math.Float64frombits(bits), true
}

const numberWidth = 16

// number reads a JSON number (json.Number, float64, int64, string).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case interface{ String() string }:
		f, err := strconv.ParseFloat(x.String(), 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	return 0, false
}

// Dates are encoded as fixed-width UTC instants at microsecond precision,
// so that their byte order is their time order.
const dateLayout = "2006-01-02T15:04:05.000000"

var (
	minInstant = "0001-01-01T00:00:00.000000"
	maxInstant = "9999-12-31T23:59:59.999999"
)

func encodeInstant(t time.Time) string { return t.UTC().Format(dateLayout) }

// dateRange is the instant range [lo, hi] a FHIR date, dateTime or instant
// covers at its precision: "2020-03" is the whole of March 2020. A value
// without a time zone is read as UTC.
func dateRange(s string) (lo, hi time.Time, ok bool) {
	s = strings.TrimSpace(s)
	n := len(s)
	switch {
	case n == 4:
		t, err := time.Parse("2006", s)
		if err != nil {
			return lo, hi, false
		}
		return t, t.AddDate(1, 0, 0).Add(-time.Microsecond), true
	case n == 7:
		t, err := time.Parse("2006-01", s)
		if err != nil {
			return lo, hi, false
		}
		return t, t.AddDate(0, 1, 0).Add(-time.Microsecond), true
	case n == 10:
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return lo, hi, false
		}
		return t, t.AddDate(0, 0, 1).Add(-time.Microsecond), true
	case n > 10 && s[10] == 'T':
		return dateTimeRange(s)
	}
	return lo, hi, false
}

// dateTimeRange handles YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm].
func dateTimeRange(s string) (lo, hi time.Time, ok bool) {
	body, zone := s, ""
	if strings.HasSuffix(body, "Z") {
		body, zone = body[:len(body)-1], "Z"
	} else if i := strings.LastIndexAny(body, "+-"); i > 10 {
		body, zone = body[:i], body[i:]
	}
	loc := time.UTC
	if zone != "" && zone != "Z" {
		z, err := time.Parse("-07:00", zone)
		if err != nil {
			return lo, hi, false
		}
		_, off := z.Zone()
		loc = time.FixedZone("", off)
	}
	var step time.Duration
	var layout string
	switch {
	case len(body) == 16:
		layout, step = "2006-01-02T15:04", time.Minute
	case len(body) == 19:
		layout, step = "2006-01-02T15:04:05", time.Second
	case len(body) > 20 && body[19] == '.':
		digits := len(body) - 20
		if digits > 9 {
			return lo, hi, false
		}
		layout = "2006-01-02T15:04:05." + strings.Repeat("0", digits)
		step = time.Duration(math.Pow10(9 - digits))
		if step < time.Microsecond {
			step = time.Microsecond
		}
	default:
		return lo, hi, false
	}
	t, err := time.ParseInLocation(layout, body, loc)
	if err != nil {
		return lo, hi, false
	}
	t = t.UTC()
	lo = t.Truncate(time.Microsecond)
	hi = t.Add(step).Add(-time.Microsecond).Truncate(time.Microsecond)
	if hi.Before(lo) {
		hi = lo
	}
	return lo, hi, true
}

// DateRange is the instant range [lo, hi] a FHIR date, dateTime or instant
// covers at its precision (history's _at).
func DateRange(s string) (lo, hi time.Time, ok bool) { return dateRange(s) }
