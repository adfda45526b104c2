package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The journal is a ring file of groups of record bodies, written with one
// fdatasync per group, in place, over blocks written (zeros) beforehand:
// such a sync writes the data blocks and flushes the disk cache without a
// file-system journal commit, about half the cost of a bbolt commit (two
// fdatasyncs, newly allocated pages).
//
//	block 0        journalMagic(8) | gen(8) | crc32c of the 16 bytes before(4)
//	group at 4K·k  groupMagic(4) | payload length(4) | gen(8) | crc32c(4) | records(4) | payload
//	payload        records × (body length(4) | body)
//
// Groups start on a block boundary and are padded to the next one, so
// that writing a group never rewrites a block of an acknowledged group.
// A group belongs to the generation of the header: when the writer
// reaches the end of the file it waits until every group is in the chain,
// writes the next generation into the header and starts again at block
// 1; groups of older generations left behind do not count. The crc covers
// the group's header (crc field zero) and payload: a group torn by a crash
// (never acknowledged) ends the journal.
const (
	journalMagic  = "PRCSAJ01"
	groupMagic    = 0x50414a47 // "PAJG"
	block         = 4096
	groupHeader   = 24
	minJournal    = 64 * block // 256 KiB
	journalZeroes = 1 << 20    // zeros written at a time when the ring grows
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// jpos is a position in the journal: the generation and the end offset of
// a group. Positions order by generation, then offset.
type jpos struct{ gen, off uint64 }

func (p jpos) after(q jpos) bool { return p.gen > q.gen || p.gen == q.gen && p.off > q.off }

// group is a group of bodies read from or written to the journal: the
// records of the requests that shared one fdatasync.
type group struct {
	end    jpos
	bodies [][]byte
	ids    []string // decision ids of bodies
}

// journalFile is the ring file. Only the writer goroutine (or Open and
// Close, when it is not running) uses it.
type journalFile struct {
	f    *os.File
	fd   int    // f's descriptor, for fdatasync
	size uint64 // bytes in the ring (a multiple of block)
	gen  uint64 // current generation
	off  uint64 // where the next group goes
}

// openJournal opens or creates the ring file at path, at least size
// bytes, written with zeros.
func openJournal(path string, size uint64) (*journalFile, error) {
	size = max(alignUp(size), minJournal)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	j := &journalFile{f: f, fd: int(f.Fd())}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	j.size = uint64(st.Size()) / block * block
	if j.size < block {
		// New (or emptied): write the header of generation 0 first, so
		// that the file is a journal however short it is.
		if err := j.writeHeader(0); err != nil {
			f.Close()
			return nil, err
		}
		j.size = block
	} else if j.gen, err = j.readHeader(); err != nil {
		f.Close()
		return nil, err
	}
	if j.size < size {
		if err := j.grow(size); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

func (j *journalFile) readHeader() (uint64, error) {
	var h [20]byte
	if _, err := j.f.ReadAt(h[:], 0); err != nil {
		return 0, fmt.Errorf("audit journal: header: %w", err)
	}
	if string(h[:8]) != journalMagic || crc32.Checksum(h[:16], castagnoli) != binary.LittleEndian.Uint32(h[16:]) {
		return 0, errors.New("audit journal: not a Parcours audit journal (bad header)")
	}
	return binary.LittleEndian.Uint64(h[8:16]), nil
}

// writeHeader makes gen the current generation, durably.
func (j *journalFile) writeHeader(gen uint64) error {
	h := make([]byte, block)
	copy(h, journalMagic)
	binary.LittleEndian.PutUint64(h[8:16], gen)
	binary.LittleEndian.PutUint32(h[16:20], crc32.Checksum(h[:16], castagnoli))
	if _, err := j.f.WriteAt(h, 0); err != nil {
		return fmt.Errorf("audit journal: header: %w", err)
	}
	if err := j.f.Sync(); err != nil { // fsync: the first header also sets the size
		return fmt.Errorf("audit journal: header: %w", err)
	}
	j.gen, j.off = gen, block
	return nil
}

// grow writes zeros from the end of the ring up to size bytes and syncs
// them with the new length: writing there later allocates nothing.
func (j *journalFile) grow(size uint64) error {
	zero := make([]byte, journalZeroes)
	for off := j.size; off < size; off += uint64(len(zero)) {
		n := min(uint64(len(zero)), size-off)
		if _, err := j.f.WriteAt(zero[:n], int64(off)); err != nil {
			return fmt.Errorf("audit journal: grow: %w", err)
		}
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("audit journal: grow: %w", err)
	}
	j.size = size
	return nil
}

// groupLen is the room a group of payload bytes takes, padding included.
func groupLen(payload int) uint64 { return alignUp(uint64(groupHeader + payload)) }

func alignUp(n uint64) uint64 { return (n + block - 1) / block * block }

// capacity is the largest group the ring can hold.
func (j *journalFile) capacity() uint64 { return j.size - block }

// fits reports whether a group of n bytes (groupLen) fits before the end.
func (j *journalFile) fits(n uint64) bool { return j.off+n <= j.size }

// encodeGroup appends to buf a group of bodies in generation gen, padded
// to a block.
func encodeGroup(buf []byte, gen uint64, bodies [][]byte) []byte {
	start := len(buf)
	payload := 0
	for _, b := range bodies {
		payload += 4 + len(b)
	}
	buf = binary.LittleEndian.AppendUint32(buf, groupMagic)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(payload))
	buf = binary.LittleEndian.AppendUint64(buf, gen)
	buf = binary.LittleEndian.AppendUint32(buf, 0) // crc, below
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(bodies)))
	for _, b := range bodies {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(b)))
		buf = append(buf, b...)
	}
	binary.LittleEndian.PutUint32(buf[start+16:], crc32.Checksum(buf[start:], castagnoli))
	return append(buf, make([]byte, int(groupLen(payload))-(len(buf)-start))...)
}

// write writes one encoded group at the current offset (sync makes it
// durable).
func (j *journalFile) write(g []byte) error {
	if _, err := j.f.WriteAt(g, int64(j.off)); err != nil {
		return fmt.Errorf("audit journal: write: %w", err)
	}
	j.off += uint64(len(g))
	return nil
}

// sync makes every group written before the call durable. Several syncs
// may run at once.
func (j *journalFile) sync() error {
	if err := fdatasync(j.f, j.fd); err != nil {
		return fmt.Errorf("audit journal: sync: %w", err)
	}
	return nil
}

// unapplied returns the groups of the current generation after the
// chain's marker: all of them when the marker is of an older generation,
// none when it is of a later one (the journal was replaced: nothing in it
// is the chain's).
func (j *journalFile) unapplied(mark jpos) ([]group, error) {
	switch {
	case mark.gen == j.gen:
		return j.scan(mark)
	case mark.gen < j.gen:
		return j.scan(jpos{})
	default:
		return nil, nil
	}
}

// ErrJournalDamaged is what recovery returns when a group of the journal
// fails its check while groups written after it are whole: a crash tears
// only the groups whose syncs were in flight (syncDepth of them, the
// torn one included), so whole groups beyond those mean the bad one had
// been made durable, and acknowledged, before it changed.
var ErrJournalDamaged = errors.New("audit journal damaged")

// scan reads the groups of the current generation that end after from,
// in order, up to the first block that does not hold a whole group of
// this generation (the end, or a group torn by a crash). If that block is
// followed by syncDepth or more whole groups of this generation, the
// journal was damaged after it was written: scan fails with
// ErrJournalDamaged rather than drop acknowledged records.
func (j *journalFile) scan(from jpos) ([]group, error) {
	var out []group
	off := uint64(block)
	for {
		g, next, err := j.groupAt(off)
		if err != nil {
			return nil, err
		}
		if g == nil {
			break
		}
		bodies, err := decodeGroup(g[groupHeader:], binary.LittleEndian.Uint32(g[20:24]))
		if err != nil {
			return nil, fmt.Errorf("audit journal: group at %d: %w", off, err)
		}
		end := jpos{j.gen, next}
		if end.after(from) {
			gr := group{end: end, bodies: bodies}
			for _, b := range bodies {
				id, err := decisionIDOf(b)
				if err != nil {
					return nil, fmt.Errorf("audit journal: group at %d: %w", off, err)
				}
				gr.ids = append(gr.ids, id)
			}
			out = append(out, gr)
		}
		off = next
	}
	if n, err := j.wholeGroupsFrom(off+block, syncDepth); err != nil {
		return nil, err
	} else if n >= syncDepth {
		return nil, fmt.Errorf("%w: the group at offset %d fails its check and whole groups of generation %d follow it, so it had been acknowledged; "+
			"the journal is left as it is for inspection (moving it aside loses the records of that group and of those after it)", ErrJournalDamaged, off, j.gen)
	}
	return out, nil
}

// groupAt reads the group of the current generation at off: nil if the
// block there does not start a whole group of this generation (crc
// checked), else the group's bytes and where the next one starts.
func (j *journalFile) groupAt(off uint64) (g []byte, next uint64, err error) {
	var hdr [groupHeader]byte
	if off+groupHeader > j.size {
		return nil, 0, nil
	}
	if _, err := j.f.ReadAt(hdr[:], int64(off)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("audit journal: read: %w", err)
	}
	payload := uint64(binary.LittleEndian.Uint32(hdr[4:8]))
	if binary.LittleEndian.Uint32(hdr[0:4]) != groupMagic || binary.LittleEndian.Uint64(hdr[8:16]) != j.gen ||
		off+groupHeader+payload > j.size {
		return nil, 0, nil
	}
	g = make([]byte, groupHeader+payload)
	if _, err := j.f.ReadAt(g, int64(off)); err != nil {
		return nil, 0, fmt.Errorf("audit journal: read: %w", err)
	}
	want := binary.LittleEndian.Uint32(g[16:20])
	binary.LittleEndian.PutUint32(g[16:20], 0)
	if crc32.Checksum(g, castagnoli) != want {
		return nil, 0, nil
	}
	binary.LittleEndian.PutUint32(g[16:20], want)
	return g, off + groupLen(int(payload)), nil
}

// wholeGroupsFrom counts, up to limit, the whole groups of the current
// generation that start on a block boundary at or after off, each
// counted group skipped whole.
func (j *journalFile) wholeGroupsFrom(off uint64, limit int) (int, error) {
	n := 0
	for n < limit && off+groupHeader <= j.size {
		g, next, err := j.groupAt(off)
		if err != nil {
			return n, err
		}
		if g == nil {
			off += block
			continue
		}
		n++
		off = next
	}
	return n, nil
}

func decodeGroup(p []byte, n uint32) ([][]byte, error) {
	bodies := make([][]byte, 0, n)
	for range n {
		if len(p) < 4 {
			return nil, errors.New("truncated")
		}
		l := binary.LittleEndian.Uint32(p)
		if uint64(len(p)-4) < uint64(l) {
			return nil, errors.New("truncated")
		}
		bodies = append(bodies, p[4:4+l])
		p = p[4+l:]
	}
	if len(p) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return bodies, nil
}

// decisionIDOf reads the decision id of a body (recovery only).
func decisionIDOf(b []byte) (string, error) {
	var r struct {
		DecisionID string `json:"decision_id"`
	}
	if err := json.Unmarshal(append(bytes.Clone(b), zeroTail...), &r); err != nil || r.DecisionID == "" {
		return "", errors.New("a body is not a record")
	}
	return r.DecisionID, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
