package mappings

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/parcours-sante/parcours/server/outcome"
)

// Spec describes a native format for Run.
type Spec[T any] struct {
	Source string
	// Columns are the CSV header columns (also the keys of flat NDJSON);
	// nil means NDJSON with nested objects (fields named by path).
	Columns []string
	// Parse checks one row and extracts what Build needs. Issues go on the
	// row (r.Fail…); Checks holds the cross-row checks of the file. Parse
	// must not keep r, and must give the same answer when called again on
	// the same row (the file is read twice).
	Parse func(r *Row, c *Checks) T
	// Note, when set, sees every good row of the first reading, in file
	// order, before any Build: what Build needs to know about the other
	// rows of the file (a patient's other stays…) is gathered there, since
	// Build may see the good rows a chunk at a time.
	Note func(v T)
	// Build adds good rows' resources to the batch, in file order (Run
	// calls it for one row at a time). It must not keep rows.
	Build func(b *Batch, rows []T)
}

// DefaultChunkEntries is the chunk size of Options.Chunks when
// ChunkEntries is 0.
const DefaultChunkEntries = 2000

// Chunk is one part of the Bundle of a file mapped in chunks
// (Options.Chunks).
type Chunk struct {
	// Index counts the chunks of the file from 0.
	Index int
	// Bundle is a transaction Bundle: the reference data and patients that
	// the chunk's rows are the first of the file to need, the facts of its
	// rows in file order, and the chunk's Provenance. Its entries may refer
	// to the fullUrls of earlier chunks' entries (the patient of an earlier
	// row): the chunks of a file are one transaction Bundle cut in parts.
	Bundle map[string]any
	// Shared is the number of entries at the start of Bundle that later
	// chunks may refer to (the reference data and patients).
	Shared int
	// Rows is the number of good rows in the chunk, FirstLine and LastLine
	// the lines of the first and last of them.
	Rows                int
	FirstLine, LastLine int
	// Last is set on the last chunk of the file.
	Last bool
	// Lines is the line of the row of each fact or record entry: the
	// entries of Bundle from Shared on, the Provenance excepted.
	Lines []int
}

// LineOf is the line of the row an entry of the chunk's Bundle comes from,
// 0 for the shared entries and the Provenance.
func (c Chunk) LineOf(entry int) int {
	if i := entry - c.Shared; i >= 0 && i < len(c.Lines) {
		return c.Lines[i]
	}
	return 0
}

// Run reads a file with a Spec and makes the Result (see the package
// documentation for the all-or-nothing and partial rules).
//
// The file is read twice: the first reading checks every row (and gathers
// Spec.Note's context); the second, only when something is to be stored,
// parses the good rows again and builds them one at a time. Without
// Options.Chunks the input is read into memory once and the Bundle is
// Result.Bundle. With Options.Chunks the input must be an io.ReadSeeker (a
// file spooled to disk): both readings stream it, and memory holds the
// chunk being built, the issues, and the cross-row state of the file (see
// Checks and the mappers' Note), whatever the size of the file.
func Run[T any](spec Spec[T], in io.Reader, opt Options) (*Result, error) {
	var src io.ReadSeeker
	if opt.Chunks != nil {
		rs, ok := in.(io.ReadSeeker)
		if !ok {
			return nil, errors.New("mappings: Options.Chunks needs an io.ReadSeeker input")
		}
		src = rs
	} else {
		data, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		src = byteSeeker(data)
	}
	today := opt.now().AddDate(0, 0, 1).Format(DateLayout) // one day of slack for time zones

	// First reading: every check, the file's digest and the context.
	res := &Result{}
	checks := newChecks()
	digest := sha256.New()
	var bad lineSet // lines of rows with issues (partial mode skips them)
	omitted, firstOmitted := 0, 0
	rows, issues, err := table(io.TeeReader(src, digest), spec.Columns, today, func(r *Row) {
		v := spec.Parse(r, checks)
		if r.OK() {
			res.Good++
			if spec.Note != nil {
				spec.Note(v)
			}
			return
		}
		bad.add(r.Line)
		if len(res.Issues) >= MaxIssues {
			if omitted++; omitted == 1 {
				firstOmitted = r.Line
			}
			return
		}
		res.Issues = append(res.Issues, r.Issues...)
	})
	if err != nil {
		return nil, err
	}
	checks = nil // its maps can go before the second reading
	res.Rows = rows
	res.Issues = append(res.Issues, issues...)
	slices.SortStableFunc(res.Issues, func(a, b outcome.Issue) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	if omitted > 0 {
		res.Issues = append(res.Issues, outcome.Issue{Severity: outcome.SeverityError, Code: outcome.CodeTooCostly, Line: firstOmitted,
			Diagnostics: fmt.Sprintf("%d more rows with issues, from line %d on, are not listed: an answer lists the issues of the first rows, up to %d", omitted, firstOmitted, MaxIssues)})
	}
	if res.Good == 0 || (len(res.Issues) > 0 && !opt.Partial) {
		return res, nil
	}
	if _, err := io.Copy(digest, src); err != nil { // the rest, if the reader stopped early
		return nil, err
	}

	// Second reading: the good rows again, built a chunk at a time.
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	size := opt.ChunkEntries
	if opt.Chunks == nil {
		size = math.MaxInt // one chunk: the whole Bundle
	} else if size <= 0 {
		size = DefaultChunkEntries
	}
	b := NewBatch(spec.Source, hex.EncodeToString(digest.Sum(nil)), opt)
	one := make([]T, 1) // rows are built one at a time: Build keeps no row
	var inChunk, first, last, good int
	var cerr error
	flush := func(final bool) {
		if inChunk == 0 || cerr != nil {
			return
		}
		c := Chunk{Index: b.chunk, Rows: inChunk, FirstLine: first, LastLine: last, Last: final, Lines: b.lines}
		c.Bundle = b.Bundle()
		c.Shared = b.shared
		inChunk = 0
		if c.Bundle == nil {
			return
		}
		res.Chunks++
		if opt.Chunks == nil {
			res.Bundle = c.Bundle
			return
		}
		cerr = opt.Chunks(c)
	}
	replay := &Checks{replay: true}
	_, _, err = table(src, spec.Columns, today, func(r *Row) {
		if cerr != nil || bad.has(r.Line) {
			return
		}
		v := spec.Parse(r, replay)
		if !r.OK() {
			return // counted below: the readings disagree
		}
		good++
		if b.entries() >= size {
			flush(false) // a full chunk goes once a next row shows it is not the last
		}
		if inChunk == 0 {
			first = r.Line
		}
		inChunk++
		last = r.Line
		one[0] = v
		b.line = r.Line
		spec.Build(b, one)
	})
	if err != nil {
		return nil, err
	}
	flush(true)
	if cerr != nil {
		return res, cerr
	}
	if good != res.Good {
		return nil, fmt.Errorf("mappings: the second reading found %d good rows, the first %d (was the file changed?)", good, res.Good)
	}
	return res, nil
}

// MaxIssues is how many row issues a Result lists: the rows with issues
// beyond them are counted in one last issue, so that a file of millions of
// bad rows is answered with a bounded OperationOutcome (and memory).
var MaxIssues = 10000

// lineSet is a set of line numbers, one bit each.
type lineSet struct{ bits []uint64 }

func (s *lineSet) add(line int) {
	if line < 0 {
		return
	}
	for line/64 >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, len(s.bits)+1)...)
	}
	s.bits[line/64] |= 1 << (line % 64)
}

func (s *lineSet) has(line int) bool {
	return line >= 0 && line/64 < len(s.bits) && s.bits[line/64]&(1<<(line%64)) != 0
}

// byteSeeker reads a file held in memory.
func byteSeeker(data []byte) io.ReadSeeker { return &memFile{data: data} }

type memFile struct {
	data []byte
	off  int
}

func (m *memFile) Read(p []byte) (int, error) {
	if m.off >= len(m.data) {
		return 0, io.EOF
	}
	n := copy(p, m.data[m.off:])
	m.off += n
	return n, nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart || off < 0 || off > int64(len(m.data)) {
		return 0, errors.New("mappings: unsupported seek")
	}
	m.off = int(off)
	return off, nil
}

// DayNumber is a YYYY-MM-DD date as the number YYYYMMDD (0 when it is
// not one): dates compare as their numbers do.
func DayNumber(date string) uint32 {
	if len(date) != 10 || date[4] != '-' || date[7] != '-' {
		return 0
	}
	var n uint32
	for i := 0; i < 10; i++ {
		if i == 4 || i == 7 {
			continue
		}
		c := date[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint32(c-'0')
	}
	return n
}

// Key is a 128-bit digest of a string: what the cross-row state of a file
// keeps instead of the string (an INS-NIR, a stay key…), 16 bytes whatever
// its length. Two different strings share a Key with a probability of
// about 2⁻¹²⁸ per pair (maphash with two random seeds of the process).
type Key [16]byte

var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// KeyOf is the Key of s.
func KeyOf(s string) Key {
	var k Key
	a, b := maphash.String(keySeeds[0], s), maphash.String(keySeeds[1], s)
	for i := range 8 {
		k[i], k[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	return k
}

// Checks are the checks across the rows of one file. They remember one
// small entry per distinct person (SamePerson: about 60 bytes) and per
// distinct key (Unique: about 25 bytes, i.e. per row for the formats with a
// row key), so
// their memory grows with the file, slowly; everything else of a file
// mapped in chunks is bounded by the chunk.
type Checks struct {
	// replay: the second reading, the cross-row checks were done.
	replay bool
	people map[Key]person
	keys   map[Key]int32
	facts  map[Key]fact
}

func newChecks() *Checks {
	return &Checks{people: map[Key]person{}, keys: map[Key]int32{}, facts: map[Key]fact{}}
}

// fact is where a fact was first described: its line and content.
type fact struct {
	line    int32
	content Key
}

type person struct {
	line   int32
	gender uint8 // 0 none, 1 male, 2 female, 3 other
	birth  string
}

func genderCode(g string) uint8 {
	switch g {
	case "":
		return 0
	case "male":
		return 1
	case "female":
		return 2
	}
	return 3
}

// SamePerson checks that every row with the same INS-NIR describes the same
// person (birth date and sex); the first row sets them.
func (c *Checks) SamePerson(r *Row, insCol, ins, birthCol, birth, sexCol, gender string) {
	if ins == "" || c.replay {
		return
	}
	k := KeyOf(ins)
	p, ok := c.people[k]
	if !ok {
		// A clone: birth is a piece of the row's line.
		c.people[k] = person{line: int32(r.Line), gender: genderCode(gender), birth: strings.Clone(birth)}
		return
	}
	if birth != "" && p.birth != "" && birth != p.birth {
		r.Fail(birthCol, outcome.CodeValue, "%s differs from line %d for the same %s", birthCol, p.line, insCol)
	}
	if g := genderCode(gender); g != 0 && p.gender != 0 && g != p.gender {
		r.Fail(sexCol, outcome.CodeValue, "%s differs from line %d for the same %s", sexCol, p.line, insCol)
	}
}

// SameFact checks that rows describing one fact (same key: a record key
// without identifier, such as a city act) describe it alike: a row
// repeated as it is is the same fact, one that differs (content: the
// columns outside the key) is an issue naming the first row, as a changed
// row in a later upload is refused (409).
func (c *Checks) SameFact(r *Row, col, key, content string) {
	if key == "" || c.replay {
		return
	}
	k, v := KeyOf(key), KeyOf(content)
	if first, ok := c.facts[k]; ok {
		if first.content != v {
			r.Fail(col, outcome.CodeValue, "the row describes the act of line %d (same professional, patient, date, kind, code and value) differently", first.line)
		}
		return
	}
	c.facts[k] = fact{line: int32(r.Line), content: v}
}

// Unique checks that a key (stay, claim, member…) appears once in the file.
func (c *Checks) Unique(r *Row, col, key string) {
	if key == "" || c.replay {
		return
	}
	k := KeyOf(col + "\x00" + key)
	if first, ok := c.keys[k]; ok {
		r.Fail(col, outcome.CodeValue, "%s repeats the one of line %s", col, strconv.Itoa(int(first)))
		return
	}
	c.keys[k] = int32(r.Line)
}
