package server

import (
	"context"
	"time"

	"github.com/parcours-sante/parcours/server/store"
)

// BreakGlassWindow is how long one justified emergency access lasts; each
// window opens a review Task for the privacy officer (DICOM 110127).
const BreakGlassWindow = 4 * time.Hour

const breakGlassSystem = "urn:parcours:break-glass"

// breakGlassWindow is an emergency access window of one user to one patient.
type breakGlassWindow struct {
	key, patient, start, end string
	opened                   bool // opened by this request: its Task is still to store
}

// breakGlassWindow returns the caller's open window for patient, or a new
// one starting now.
func (s *Server) breakGlassWindow(tx *store.Tx, cl *caller, patient string) *breakGlassWindow {
	key := cl.claims.Subject + "|" + patient
	for _, w := range cl.reviews {
		if w.key == key {
			return &w
		}
	}
	now, _ := time.Parse(time.RFC3339, cl.now)
	best := &breakGlassWindow{}
	for _, id := range tx.Lookup("Task", "identifier", breakGlassSystem+"|"+key) {
		r, err := tx.Get("Task", id)
		if err != nil || r.Deleted() {
			continue
		}
		task := decodeStored(r.JSON)
		restriction, _ := task["restriction"].(map[string]any)
		period, _ := restriction["period"].(map[string]any)
		start, _ := period["start"].(string)
		end, _ := period["end"].(string)
		if t, err := time.Parse(time.RFC3339, end); err == nil && now.Before(t) && end > best.end {
			best = &breakGlassWindow{key: key, patient: patient, start: start, end: end}
		}
	}
	if best.end != "" {
		return best
	}
	return &breakGlassWindow{key: key, patient: patient, start: cl.now, end: now.Add(BreakGlassWindow).Format(time.RFC3339), opened: true}
}

func (cl *caller) addReview(w breakGlassWindow) {
	for _, r := range cl.reviews {
		if r.key == w.key {
			return
		}
	}
	cl.reviews = append(cl.reviews, w)
}

// storeReviews writes one review Task per break-the-glass window the request
// opened; it runs before the answer leaves, so the review is durable
// whenever the emergency access happened.
func (s *Server) storeReviews(cl *caller) {
	if len(cl.reviews) == 0 {
		return
	}
	reviews := cl.reviews
	cl.reviews = nil
	err := s.db.Update(context.Background(), func(tx *store.Tx) error {
		for _, w := range reviews {
			task := map[string]any{
				"resourceType": "Task",
				"meta":         map[string]any{"source": sourcePrefix + "hub:"},
				"identifier":   []any{map[string]any{"system": breakGlassSystem, "value": w.key}},
				"status":       "requested",
				"intent":       "order",
				"priority":     "urgent",
				"code": map[string]any{"coding": []any{map[string]any{
					"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110127", "display": "Emergency Override Started"}}},
				"description": "Review a break-the-glass access (privacy officer)",
				"for":         map[string]any{"reference": w.patient},
				"authoredOn":  w.start,
				"requester":   map[string]any{"identifier": map[string]any{"system": "urn:parcours:sub", "value": cl.claims.Subject}},
				"owner":       map[string]any{"display": "privacy officer"},
				"reasonCode":  map[string]any{"text": cl.btg},
				"restriction": map[string]any{"period": map[string]any{"start": w.start, "end": w.end}},
			}
			if _, err := tx.Put("Task", store.NewID(), task); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("break-the-glass review task not stored", "error", err.Error())
	}
}
