package server

import (
	"sync"

	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/store"
)

// authzMemo memoises, for the requests of one store, what decisions are
// built from: the access metadata of current versions (storedAccess) and
// patient contexts (patientContext). Both are exact: a memoised value is
// used only where reading it again would give the same.
//
// A patient context depends on the whole store: the contexts of one
// snapshot (store.Tx.Snapshot) are kept, and used by decisions in read
// transactions of that snapshot; a commit that writes resources makes them
// the past. The decision log's own commits (logs and blobs only) do not:
// with the audit log on, they came every few milliseconds and emptied the
// memo as fast as reads filled it.
//
// Access metadata is keyed by type, id, version and commit time. A
// version's index entries are written with it and not changed after (but
// by the offline reindex command), and the commit time, strictly
// increasing from one commit to the next, tells a version apart from one
// an ingest rollback purged before a later write reused its id and
// number. It is used in read transactions only: a write transaction may
// see a version whose commit fails.
type authzMemo struct {
	mu     sync.RWMutex
	access map[accessKey]accessInfo

	contextsMu sync.RWMutex
	contextsAt uint64 // the snapshot of contexts
	contexts   map[contextKey]*patientIn

	// consents memoises the summaries of Consent versions that depend on
	// nothing but the version (consentSummary), bounded like access.
	consentsMu sync.RWMutex
	consents   map[accessKey]consentIn
}

func (m *authzMemo) consent(k accessKey) (consentIn, bool) {
	m.consentsMu.RLock()
	defer m.consentsMu.RUnlock()
	c, ok := m.consents[k]
	return c, ok
}

func (m *authzMemo) putConsent(k accessKey, c consentIn) {
	m.consentsMu.Lock()
	defer m.consentsMu.Unlock()
	if m.consents == nil || len(m.consents) >= maxAccess {
		m.consents = map[accessKey]consentIn{}
	}
	m.consents[k] = c
}

// contextKey: a patient context is a function of the snapshot, the
// patient and the caller's claims (organisation, RPPS, CareTeams, patient
// claim). The verified claims of a token are shared by its requests.
type contextKey struct {
	claims  *auth.Claims
	patient string
}

// maxContexts bounds the contexts of a snapshot (emptied when full).
const maxContexts = 1 << 12

// accessKey names one stored version.
type accessKey struct {
	typ, id string
	version uint64
	at      int64 // commit time, ns since the epoch
}

// maxAccess bounds the memo (emptied when full; entries of ~200–400
// bytes): hot versions only. 65 536 showed in the soak as a heap growing
// by 14 MiB a minute while it filled.
const maxAccess = 1 << 12

// memo returns the memo of s's store.
func (s *Server) memo() *authzMemo { return &s.authz }

// readOnly reports whether tx is a read transaction (store.DB.View): only
// those have a snapshot.
func readOnly(tx *store.Tx) bool { return tx != nil && tx.Snapshot() != 0 }

// currentAccess is storedAccess of r, the current version in tx, memoised
// (see authzMemo). The slices of the result are shared: nobody changes
// them.
func (s *Server) currentAccess(cl *caller, tx *store.Tx, r store.Resource) accessInfo {
	m := cl.memo
	if m == nil || r.Version == 0 || r.LastUpdated.IsZero() || !readOnly(tx) {
		return storedAccess(tx, r.Type, r.ID)
	}
	k := accessKey{typ: r.Type, id: r.ID, version: r.Version, at: r.LastUpdated.UnixNano()}
	m.mu.RLock()
	a, ok := m.access[k]
	m.mu.RUnlock()
	if ok {
		return a
	}
	a = storedAccess(tx, r.Type, r.ID)
	m.mu.Lock()
	if len(m.access) >= maxAccess {
		m.access = nil
	}
	if m.access == nil {
		m.access = map[accessKey]accessInfo{}
	}
	m.access[k] = a
	m.mu.Unlock()
	return a
}

// contextOf is the patient context of patient for cl in tx: from the
// request's own memo (a search), the store's memo when tx is a read
// transaction, or read (patientContext). t is the decision's target.
func (s *Server) contextOf(tx *store.Tx, cl *caller, patient string, t *target) *patientIn {
	if pc, ok := cl.contexts[patient]; ok {
		return pc
	}
	var snap uint64
	if cl.memo != nil && tx != nil {
		snap = tx.Snapshot()
	}
	k := contextKey{claims: cl.claims, patient: patient}
	pc := cl.memo.context(snap, k)
	if pc == nil {
		pc = s.patientContext(tx, cl, patient, t)
		cl.memo.putContext(snap, k, pc)
	}
	if cl.contexts != nil {
		cl.contexts[patient] = pc
	}
	return pc
}

// context returns the memoised context of k at snapshot snap (nil: none).
// The contexts are shared: nobody changes them.
func (m *authzMemo) context(snap uint64, k contextKey) *patientIn {
	if m == nil || snap == 0 {
		return nil
	}
	m.contextsMu.RLock()
	defer m.contextsMu.RUnlock()
	if m.contextsAt != snap {
		return nil
	}
	return m.contexts[k]
}

// putContext memoises pc, read at snapshot snap; the contexts of an older
// snapshot go.
func (m *authzMemo) putContext(snap uint64, k contextKey, pc *patientIn) {
	if m == nil || snap == 0 {
		return
	}
	m.contextsMu.Lock()
	defer m.contextsMu.Unlock()
	switch {
	case snap < m.contextsAt:
		return
	case snap > m.contextsAt || len(m.contexts) >= maxContexts:
		m.contextsAt, m.contexts = snap, map[contextKey]*patientIn{}
	}
	m.contexts[k] = pc
}
