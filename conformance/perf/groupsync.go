package perf

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
)

// A GroupSync is the least a durable answer costs on a disk: before each
// request its handler waits until a record-sized write is on disk, and
// every request waiting shares one write and one fdatasync (group commit),
// in place over blocks written beforehand (the cheapest sync, as the audit
// journal does). It has no record to build, encode, hash or chain: the
// rate of a handler behind it bounds from above what any log durable
// before the answer allows with that handler, at that concurrency, on
// that disk.
type GroupSync struct {
	f     *os.File
	queue chan chan error
	done  chan struct{}
}

const (
	groupSyncRecord = 1024     // bytes written per request, about an audit record
	groupSyncRing   = 64 << 20 // the in-place ring, written with zeros at start
)

// NewGroupSync prepares the ring file in dir and starts its syncer.
func NewGroupSync(dir string) (*GroupSync, error) {
	f, err := os.Create(filepath.Join(dir, "groupsync-probe"))
	if err != nil {
		return nil, err
	}
	zero := make([]byte, 1<<20)
	for off := 0; off < groupSyncRing && err == nil; off += len(zero) {
		_, err = f.Write(zero)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	g := &GroupSync{f: f, queue: make(chan chan error, 1024), done: make(chan struct{})}
	go g.run()
	return g, nil
}

// run writes and syncs every request waiting as one group, then
// acknowledges them.
func (g *GroupSync) run() {
	defer close(g.done)
	fd := int(g.f.Fd())
	buf := make([]byte, 0, 1<<20)
	var off int64
	var group []chan error
	for first := range g.queue {
		group = append(group[:0], first)
	drain:
		for len(group) < cap(buf)/groupSyncRecord {
			select {
			case c, ok := <-g.queue:
				if !ok {
					break drain
				}
				group = append(group, c)
			default:
				break drain
			}
		}
		n := len(group) * groupSyncRecord
		n = (n + 4095) &^ 4095 // whole blocks, as the journal writes them
		buf = buf[:n]
		buf[0]++
		if off+int64(n) > groupSyncRing {
			off = 0
		}
		_, err := g.f.WriteAt(buf, off)
		off += int64(n)
		if err == nil {
			err = fdatasync(g.f, fd)
		}
		for _, c := range group {
			c <- err
		}
	}
}

// Wait returns once a write made after the call is on disk.
func (g *GroupSync) Wait() error {
	c := make(chan error, 1)
	g.queue <- c
	return <-c
}

// Handler serves h after a durable group write for each request; a failed
// sync answers 500.
func (g *GroupSync) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.Wait(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Close stops the syncer (no Wait may be running) and removes the file.
func (g *GroupSync) Close() error {
	close(g.queue)
	<-g.done
	return errors.Join(g.f.Close(), os.Remove(g.f.Name()))
}
