package store

import (
	"reflect"
	"unsafe"

	"go.etcd.io/bbolt"
)

// bbolt's free-page list remembers, for every page it hands out from the
// free pages, the transaction that took it (the allocs map of
// go.etcd.io/bbolt/internal/freelist, v1.5.0), and forgets it only when the
// page is freed again. Pages that stay live, as the audit log's and the
// version history's do, keep their entry for as long as the file is open:
// memory that grows with everything written since Open (the soak measured
// about 6 MiB a minute of it under audited load), and a map that every
// rolled-back write transaction walks whole.
//
// The entries serve a rollback, which gives back the pages its own
// transaction took, and the early reuse of a page taken and freed again
// while no reader could see it. Entries of committed transactions are
// therefore only an optimisation: without one, the page is reused once the
// readers older than its release are done, as the pages bbolt takes by
// growing the file always are. trimAllocs drops them at the start of a
// write transaction, before it takes any page, once there are more than
// allocsKeep. bbolt offers no API for it, hence the reflection; the
// version is pinned in go.mod and TestAllocsTrimmed fails if the layout
// changes.

// allocsKeep is how many entries trimAllocs lets accumulate: about 40 bytes
// each.
var allocsKeep = 1 << 15

// allocsOf returns the allocs map of b's free-page list as a settable
// value, ok false when bbolt's layout is not the one described above.
func allocsOf(b *bbolt.DB) (m reflect.Value, ok bool) {
	defer func() {
		if recover() != nil { // a field of another kind than expected
			ok = false
		}
	}()
	fl := reflect.ValueOf(b).Elem().FieldByName("freelist")
	if !fl.IsValid() || fl.Kind() != reflect.Interface || fl.IsNil() {
		return reflect.Value{}, false
	}
	impl := fl.Elem() // *hashMap or *array
	if impl.Kind() != reflect.Pointer || impl.IsNil() {
		return reflect.Value{}, false
	}
	shared := impl.Elem().FieldByName("shared")
	if !shared.IsValid() || shared.Kind() != reflect.Pointer || shared.IsNil() {
		return reflect.Value{}, false
	}
	f := shared.Elem().FieldByName("allocs")
	if !f.IsValid() || f.Kind() != reflect.Map || !f.CanAddr() {
		return reflect.Value{}, false
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem(), true
}

// trimAllocs replaces the allocs map (found once, at Open: the free-page
// list lives as long as the handle) by an empty one when it holds more
// than allocsKeep entries. It must run inside a write transaction (bbolt's
// writer lock guards the map) before that transaction allocates a page.
func (db *DB) trimAllocs() {
	if m := db.allocs; m.IsValid() && m.Len() > allocsKeep {
		m.Set(reflect.MakeMap(m.Type()))
	}
}
