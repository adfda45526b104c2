package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/pathway"
	"github.com/parcours-sante/parcours/server/store"
)

// EpisodeOfCares follow the facts: every write that touches a patient's
// compartment with a fact marks the patient dirty (from the store Indexer,
// inside the write transaction), and a background worker recomputes the
// patient's episodes (server/pathway) and writes the EpisodeOfCares that
// changed, in one transaction per batch of patients; an episode the facts
// no longer support (its patient purged, or a trigger gone) is deleted. A
// rolled-back write only costs a recomputation that changes nothing; a
// delete, and the rollback of an ingest job, mark the patients of what
// they remove (store.Options.Removed), whose episodes may rest on it.
// Reads that need the episodes fresh ($pathway, $detect-ruptures) refresh
// their patient first.

// factTypes are the resource types whose writes can change a pathway.
var factTypes = map[string]bool{
	"Patient": true, "Encounter": true, "Condition": true, "Procedure": true, "Observation": true,
	"MedicationDispense": true, "MedicationRequest": true, "MedicationAdministration": true,
	"Immunization": true, "DiagnosticReport": true, "ServiceRequest": true, "CarePlan": true, "AdverseEvent": true,
}

// dirtySet is the set of patients whose episodes need recomputing.
type dirtySet struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	wake chan struct{}
	idle *sync.Cond
	busy bool
	// facts counts the writes (and removals) that can change a pathway
	// fact or its context: what was computed from all patients' facts
	// at one count, and read after a Barrier, holds while it stays.
	facts atomic.Uint64
	// marks counts the patients marked (tests).
	marks atomic.Uint64
	// started is set by the worker; close stops it and done says it stopped.
	started bool
	close   chan struct{}
	done    chan struct{}
}

func newDirtySet() *dirtySet {
	d := &dirtySet{ids: map[string]struct{}{}, wake: make(chan struct{}, 1), close: make(chan struct{}), done: make(chan struct{})}
	d.idle = sync.NewCond(&d.mu)
	return d
}

// mark adds patients ("Patient/<id>").
func (d *dirtySet) mark(patients []string) {
	if len(patients) == 0 {
		return
	}
	d.marks.Add(uint64(len(patients)))
	d.mu.Lock()
	for _, p := range patients {
		d.ids[p] = struct{}{}
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// take removes and returns up to n patients, sorted.
func (d *dirtySet) take(n int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, min(n, len(d.ids)))
	for p := range d.ids {
		if len(out) == n {
			break
		}
		out = append(out, p)
	}
	for _, p := range out {
		delete(d.ids, p)
	}
	d.busy = len(out) > 0
	if !d.busy {
		d.idle.Broadcast()
	}
	slices.Sort(out)
	return out
}

// wait blocks until no patient is dirty and the worker is idle.
func (d *dirtySet) wait() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for (len(d.ids) > 0 || d.busy) && !d.closed() {
		d.idle.Wait()
	}
}

func (d *dirtySet) closed() bool {
	select {
	case <-d.close:
		return true
	default:
		return false
	}
}

// trackPathways wraps the store Indexer: a fact's patients become dirty.
// When fresh (the store's CreateIndexer: a create under an id just drawn)
// a resource does not mark itself (a Patient is its own patient): nothing
// stored can reference it yet, so that it has no facts but those written
// with it, which mark it themselves.
func trackPathways(dirty *dirtySet, next store.Indexer, fresh bool) store.Indexer {
	return func(typ string, res map[string]any) []store.IndexEntry {
		entries := next(typ, res)
		if factTypes[typ] || slices.Contains(contextTypes, typ) {
			dirty.facts.Add(1)
		}
		if factTypes[typ] {
			self := ""
			if id, _ := res["id"].(string); fresh {
				self = typ + "/" + id
			}
			var ps []string
			for _, e := range entries {
				if e.Param == paramPatient && e.Value != self {
					ps = append(ps, e.Value)
				}
			}
			dirty.mark(ps)
		}
		return entries
	}
}

// removed marks the patient of a resource deleted or purged by a job's
// rollback (the store's Removed hook, inside the write: the worker reads
// after a Barrier): the patient itself, or the patient a fact was about.
func (d *dirtySet) removed(typ, id string, entries []store.IndexEntry) {
	if factTypes[typ] || slices.Contains(contextTypes, typ) {
		d.facts.Add(1)
	}
	switch {
	case typ == "Patient":
		d.mark([]string{"Patient/" + id})
	case factTypes[typ]:
		var ps []string
		for _, e := range entries {
			if e.Param == paramPatient {
				ps = append(ps, e.Value)
			}
		}
		d.mark(ps)
	}
}

// stop ends the worker (if it runs) and waits for it: nothing is written
// after the store closes. Pending patients are recomputed at the next
// $pathway or $detect-ruptures for them, or after the next write.
func (d *dirtySet) stop() {
	d.mu.Lock()
	select {
	case <-d.close:
		d.mu.Unlock()
		return
	default:
		close(d.close)
	}
	d.idle.Broadcast()
	started := d.started
	d.mu.Unlock()
	if started {
		<-d.done
	}
}

// episodeWorker recomputes dirty patients until the server closes.
func (s *Server) episodeWorker() {
	s.dirty.mu.Lock()
	select {
	case <-s.dirty.close:
		s.dirty.mu.Unlock()
		return
	default:
	}
	s.dirty.started = true
	s.dirty.mu.Unlock()
	defer close(s.dirty.done)
	for {
		batch := s.dirty.take(256)
		if len(batch) == 0 {
			select {
			case <-s.dirty.wake:
				continue
			case <-s.dirty.close:
				return
			}
		}
		// The writes that marked these patients may not have committed
		// yet (the mark is made inside them): read after them.
		if err := s.db.Barrier(context.Background()); err != nil {
			s.log.Error("pathway episodes not refreshed", "patients", len(batch), "error", err.Error())
			continue
		}
		if err := s.refreshEpisodes(context.Background(), batch); err != nil {
			s.log.Error("pathway episodes not refreshed", "patients", len(batch), "error", err.Error())
		}
	}
}

// WaitPathways blocks until every write so far is reflected in the
// patients' EpisodeOfCares (tests, demo).
func (s *Server) WaitPathways() { s.dirty.wait() }

// refreshEpisodes recomputes the EpisodeOfCares of patients ("Patient/<id>")
// and writes those that changed.
func (s *Server) refreshEpisodes(ctx context.Context, patients []string) error {
	type plan struct {
		id  string
		res map[string]any // nil: delete
	}
	var plans []plan
	err := s.db.View(func(tx *store.Tx) error {
		for _, ref := range patients {
			pid := ref[len("Patient/"):]
			var episodes []pathway.Episode
			if rec, ok := loadRecord(tx, pid, factRecord, nil); ok {
				episodes = pathway.Episodes(pathway.Facts(rec.decoded))
			}
			for _, typ := range pathway.Types() {
				id := episodeID(ref, typ)
				cur, err := tx.Get("EpisodeOfCare", id)
				exists := err == nil && !cur.Deleted()
				i := slices.IndexFunc(episodes, func(ep pathway.Episode) bool { return ep.Type == typ })
				switch {
				case i < 0 && exists:
					plans = append(plans, plan{id, nil}) // no longer supported by the facts
				case i >= 0:
					res := episodeResource(ref, id, episodes[i])
					if !exists || !sameContent(cur.JSON, res) {
						plans = append(plans, plan{id, res})
					}
				}
			}
		}
		return nil
	})
	if err != nil || len(plans) == 0 {
		return err
	}
	return s.db.Update(ctx, func(tx *store.Tx) error {
		for _, p := range plans {
			var err error
			if p.res == nil {
				_, err = tx.Delete("EpisodeOfCare", p.id)
			} else {
				_, err = tx.Upsert("EpisodeOfCare", p.id, p.res)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// episodeID is the stable id of a patient's episode of one pathway type.
func episodeID(patient, pathwayType string) string {
	h := sha256.Sum256([]byte(patient + "|" + pathwayType))
	return "pw-" + hex.EncodeToString(h[:12])
}

// episodeResource is the EpisodeOfCare of one pathway episode.
func episodeResource(patient, id string, ep pathway.Episode) map[string]any {
	status := "active"
	if ep.Status != "" {
		status = ep.Status
	}
	res := map[string]any{
		"resourceType": "EpisodeOfCare",
		"id":           id,
		"meta":         map[string]any{"source": sourcePrefix + "hub:"},
		"status":       status,
		"type":         []any{map[string]any{"coding": []any{vocab.Coding{System: vocab.PathwayTypeSystem, Code: ep.Type, Display: displayOf(vocab.PathwayTypeSystem, ep.Type)}.Map()}}},
		"patient":      map[string]any{"reference": patient},
	}
	period := map[string]any{}
	if !ep.Start.IsZero() {
		period["start"] = ep.Start.UTC().Format(time.DateOnly)
	}
	if !ep.End.IsZero() {
		period["end"] = ep.End.UTC().Format(time.DateOnly)
	}
	if len(period) > 0 {
		res["period"] = period
	}
	if ep.Condition != "" {
		res["diagnosis"] = []any{map[string]any{"condition": map[string]any{"reference": ep.Condition}, "rank": 1}}
	}
	var ext []any
	if sc, ok := vocab.StageOf(ep.Stage); ok {
		ext = append(ext, map[string]any{"url": vocab.CurrentStageExtensionURL, "valueCoding": sc.Coding()})
	}
	if len(ext) > 0 {
		res["extension"] = ext
	}
	return res
}

func displayOf(system, code string) string {
	c, _ := vocab.Lookup(system, code)
	return c.Display
}
