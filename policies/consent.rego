# Consents of the patient (input.patient.consents, pre-indexed by the server):
# active permit and deny provisions that match the caller, the purpose, the
# resource type and its security labels. Deny provisions win over permits.
package parcours.consent

import data.parcours.matrix
import data.parcours.request as req

# objections: ids of active consents with a deny provision for this request.
# A deny counts unless its period has certainly not started or is certainly
# over: an unreadable period keeps the objection (fail closed).
objections contains id if {
	some c in req.consents
	c.status == "active"
	not outside_period(c)
	some p in req.provisions_of(c)
	p.type == "deny"
	not outside_period(p)
	actor_match(p)
	deny_purpose_match(p)
	class_match(p)
	label_match(p)
	not delegated_deny_of_care_team(c)
	id := consent_id(c)
}

# Consents recorded by a delegated author (matrix.consent.delegated_authors:
# the programme operator) speak for the patient only within limits: they
# cannot lock the patient's care team out, grant purposes beyond the
# delegation, or undo a withdrawal the patient made (black-box review: a
# programme operator opened a record to an outsider, locked the hospital
# out, and re-activated a consent the patient had withdrawn).
delegated(c) if c.author in matrix.consent.delegated_authors

delegated_deny_of_care_team(c) if {
	delegated(c)
	req.in_care_team
}

delegated_permit_beyond(c, p) if {
	delegated(c)
	empty(p, "purposes")
}

delegated_permit_beyond(c, p) if {
	delegated(c)
	some q in p.purposes
	not q in matrix.consent.delegated_purposes
}

delegated_permit_beyond(c, _) if {
	delegated(c)
	patient_withdrew(c.scope)
}

# patient_withdrew: the patient's own last word on a consent of this scope
# (a version the patient wrote) is a withdrawal or a refusal.
patient_withdrew(scope) if {
	some w in req.consents
	w.author == "patient"
	w.scope == scope
	w.status in {"inactive", "rejected"}
}

# permits: ids of active consents with a permit provision for this request.
# A permit counts only inside a readable period.
permits contains consent_id(c) if {
	some c in req.consents
	some p in req.provisions_of(c)
	permit_applies(c, p)
}

# named_permits: the permits whose provision names the caller among its
# actors. Sharing outside the équipe de soins is consented to a given
# professional or organisation (brief §4.2 pattern 1, CSP L1110-4): a
# permit that names no actor does not open the patient's record to every
# professional outside the care team.
named_permits contains consent_id(c) if {
	some c in req.consents
	some p in req.provisions_of(c)
	permit_applies(c, p)
	not empty(p, "actors")
}

permit_applies(c, p) if {
	c.status == "active"
	c.scope in matrix.consent.scopes
	inside_period(c)
	p.type == "permit"
	inside_period(p)
	count(object.get(p, "unsupported", [])) == 0 # limits the policy cannot apply: a permit of them would share more
	actor_match(p)
	permit_purpose_match(p)
	permit_scope_match(p)
	not delegated_permit_beyond(c, p)
}

objected if count(objections) > 0

permitted if count(permits) > 0

consent_id(c) := id if {
	id := c.id
	is_string(id)
} else := "Consent/?"

# Provision matching. Empty or absent lists apply to everyone / all purposes /
# all types / all labels.

empty(p, key) if object.get(p, key, null) == null

empty(p, key) if count(p[key]) == 0

actor_match(p) if empty(p, "actors")

actor_match(p) if {
	some a in p.actors
	a in req.caller_ids
}

# A deny names a purpose code; it also covers the other codes of the same
# matrix column (an objection to TREAT is an objection to COC).
deny_purpose_match(p) if empty(p, "purposes")

deny_purpose_match(p) if req.purpose in p.purposes

deny_purpose_match(p) if {
	some q in p.purposes
	matrix.purposes[q].column == req.column
}

# A permit grants exactly the codes it names.
permit_purpose_match(p) if empty(p, "purposes")

permit_purpose_match(p) if req.purpose in p.purposes

# A request-level decision on a collection cannot know the types and labels
# of the results: a permit that names some is enough to let the request
# through, and each result is then checked (filter obligation).
permit_scope_match(p) if {
	class_match(p)
	label_match(p)
}

permit_scope_match(_) if {
	req.request_level
	req.collection
}

class_match(p) if empty(p, "classes")

class_match(p) if req.resource_type in p.classes

label_match(p) if empty(p, "security_labels")

label_match(p) if {
	some l in p.security_labels
	l in req.labels
}

# Periods: FHIR dateTime (RFC 3339) or date (YYYY-MM-DD, a whole day).

inside_period(x) if object.get(x, "period", null) == null

inside_period(x) if {
	is_object(x.period)
	start_passed(x.period)
	end_not_passed(x.period)
}

start_passed(period) if object.get(period, "start", null) == null

start_passed(period) if start_ns(period.start) <= req.now_ns

end_not_passed(period) if object.get(period, "end", null) == null

end_not_passed(period) if req.now_ns <= end_ns(period.end)

outside_period(x) if start_ns(x.period.start) > req.now_ns

outside_period(x) if end_ns(x.period.end) < req.now_ns

# Dates are told apart before parsing: the engine runs with strict builtin
# errors, where a failed parse is an evaluation error (a denial). FHIR
# dateTime allows a year or a month alone: a period's start is its first
# instant, its end its last (once unreadable, so a permit never applied and
# a deny always did: black-box review).
start_ns(s) := n if {
	is_date(s)
	n := time.parse_ns("2006-01-02", s)
} else := n if {
	is_datetime(s)
	n := time.parse_rfc3339_ns(s)
} else := n if {
	is_month(s)
	n := time.parse_ns("2006-01", s)
} else := n if {
	is_year(s)
	n := time.parse_ns("2006", s)
}

# A date-only end includes its whole day, a month its whole month, a year
# its whole year.
end_ns(s) := n if {
	is_date(s)
	n := (time.parse_ns("2006-01-02", s) + 86400000000000) - 1
} else := n if {
	is_datetime(s)
	n := time.parse_rfc3339_ns(s)
} else := n if {
	is_month(s)
	n := time.add_date(time.parse_ns("2006-01", s), 0, 1, 0) - 1
} else := n if {
	is_year(s)
	n := time.add_date(time.parse_ns("2006", s), 1, 0, 0) - 1
}

is_month(s) if {
	is_string(s)
	regex.match(`^[0-9]{4}-(0[1-9]|1[0-2])$`, s)
}

is_year(s) if {
	is_string(s)
	regex.match(`^[0-9]{4}$`, s)
}

is_date(s) if {
	is_string(s)
	regex.match(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`, s)
}

is_datetime(s) if {
	is_string(s)
	regex.match(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T`, s)
}
