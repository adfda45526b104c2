package server

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
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
func (s *Server) storeReviews(ctx context.Context, cl *caller) {
	if len(cl.reviews) == 0 {
		return
	}
	reviews := cl.reviews
	cl.reviews = nil
	err := s.commit(context.WithoutCancel(ctx), func(tx *store.Tx) error {
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
		s.log.ErrorContext(ctx, "break-the-glass review task not stored", "error", err.Error())
	}
}

// ReviewExtensionURL marks a break-the-glass AuditEvent with the status of
// its review Task (requested, or completed once an auditor reviewed it).
const ReviewExtensionURL = "https://example.org/fhir/StructureDefinition/break-glass-review"

// reviewTask finds the review Task of the break-the-glass window a
// record's decision was taken in: the Task of the record's subject about
// the record's patient (known to the log by its pseudonym only) whose
// period holds the record's time.
func (s *Server) reviewTask(tx *store.Tx, rec audit.Record) (store.Resource, map[string]any, bool) {
	sub, pseudonym := rec.Labels[audit.LabelSub], rec.Labels[audit.LabelPatient]
	at, err := time.Parse(time.RFC3339Nano, rec.Timestamp)
	if rec.Labels[audit.LabelBreakGlass] != "true" || sub == "" || pseudonym == "" || err != nil {
		return store.Resource{}, nil, false
	}
	var found store.Resource
	var task map[string]any
	tx.IndexScan("Task", "identifier", breakGlassSystem+"|"+sub+"|", func(_, id string) bool {
		r, err := tx.Get("Task", id)
		if err != nil || r.Deleted() {
			return true
		}
		t := decodeStored(r.JSON)
		forRef, _ := t["for"].(map[string]any)
		ref, _ := forRef["reference"].(string)
		restriction, _ := t["restriction"].(map[string]any)
		period, _ := restriction["period"].(map[string]any)
		start, _ := period["start"].(string)
		end, _ := period["end"].(string)
		from, err1 := time.Parse(time.RFC3339, start)
		to, err2 := time.Parse(time.RFC3339, end)
		if err1 != nil || err2 != nil || at.Before(from) || at.After(to) || s.patientPseudonym(tx, "audit", ref) != pseudonym {
			return true
		}
		found, task = r, t
		return false
	})
	return found, task, task != nil
}

// reviewStatus is the status of the review of a break-the-glass record
// ("" for another record, or when its Task is not found).
func (s *Server) reviewStatus(tx *store.Tx, rec audit.Record) string {
	if rec.Labels[audit.LabelBreakGlass] != "true" {
		return ""
	}
	_, task, ok := s.reviewTask(tx, rec)
	if !ok {
		return ""
	}
	status, _ := task["status"].(string)
	return status
}

// withReview adds the review status of a break-the-glass AuditEvent.
func withReview(ev map[string]any, status string) map[string]any {
	if status != "" {
		ev["extension"] = append(asList(ev["extension"]), map[string]any{"url": ReviewExtensionURL, "valueCode": status})
	}
	return ev
}

// auditReview answers POST /fhir/AuditEvent/{decision id}/$review
// (auditors): the review Task of that break-the-glass access is completed,
// with the reviewer and the time in a note. The answer is a Parameters
// (decision, status, reviewer, reviewed): no patient id.
func (s *Server) auditReview(c echo.Context) error {
	if s.audit == nil {
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "this hub runs without an audit log")
	}
	if err := s.audit.Flush(); err != nil {
		return err
	}
	cl := callerOf(c)
	ctx := c.Request().Context()
	id := c.Param("id")
	var note string
	var status string
	decided := 0
	if cl != nil {
		decided = len(cl.records)
	}
	err := s.commit(ctx, func(tx *store.Tx) error {
		if cl != nil {
			cl.records = cl.records[:decided] // a batch run again decides again: one record
		}
		if _, err := s.decide(ctx, cl, tx, question{interaction: "operation", operation: "$review-break-glass", typ: "AuditEvent"}); err != nil {
			return err
		}
		rec, ok := audit.Find(tx, id)
		if !ok {
			return outcome.NotFound("no decision with this id")
		}
		if rec.Labels[audit.LabelBreakGlass] != "true" {
			return outcome.New(http.StatusUnprocessableEntity, outcome.CodeProcessing, "", "decision %s is not a break-the-glass access: there is nothing to review", id)
		}
		r, task, ok := s.reviewTask(tx, rec)
		if !ok {
			return outcome.New(http.StatusConflict, outcome.CodeConflict, "", "no review Task holds decision %s (its window's Task is missing)", id)
		}
		if status, _ = task["status"].(string); status == "completed" {
			return nil // reviewed already: the first review stands
		}
		reviewer := ""
		if cl != nil && cl.claims != nil {
			reviewer = cl.claims.Subject
		}
		note = tx.Now().UTC().Format(time.RFC3339)
		task["status"] = "completed"
		task["lastModified"] = note
		task["note"] = append(asList(task["note"]), map[string]any{"authorString": reviewer, "time": note,
			"text": "Break-the-glass access reviewed (decision " + id + ")"})
		status = "completed"
		_, err := tx.Put("Task", r.ID, task)
		return err
	})
	if err != nil {
		return err
	}
	params := []any{
		map[string]any{"name": "decision", "valueString": id},
		map[string]any{"name": "status", "valueCode": status},
	}
	if note != "" {
		params = append(params, map[string]any{"name": "reviewed", "valueDateTime": note})
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(map[string]any{"resourceType": "Parameters", "parameter": params}))
}
