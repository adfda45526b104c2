# Writes: create, update, patch, delete, and each entry of a transaction or
# batch. A write is allowed by a write scope (data.parcours.matrix.writes):
# actor type, purpose, writable type list, and the conditions own_org (a new
# resource or one the caller's organisation supplied), care_team (the patient
# is in the caller's care team), self (the patient's own record), ingest
# (only for the entries of that $ingest source).
package parcours.writes

import data.parcours.matrix
import data.parcours.outcome
import data.parcours.request as req

# Scopes of this actor type and purpose.
scopes contains s if {
	some s in matrix.writes
	req.actor in s.actors
	req.purpose in s.purposes
}

# ... that cover the resource type and the interaction.
covering contains s if {
	some s in scopes
	req.resource_type in matrix.type_lists[s.types]
	interaction_ok(s)
	ingest_ok(s)
}

# ... whose conditions hold.
granted contains s if {
	some s in covering
	count(unmet(s)) == 0
}

unmet(s) := {r |
	some r in ["not-own-organisation", "not-in-care-team", "not-own-record"]
	not condition_holds(s, r)
}

condition_holds(s, "not-own-organisation") if not s.own_org

condition_holds(s, "not-own-organisation") if req.writable_by_own_org

condition_holds(s, "not-in-care-team") if not s.care_team

condition_holds(s, "not-in-care-team") if req.in_care_team

condition_holds(s, "not-own-record") if not s.self

condition_holds(s, "not-own-record") if req.is_self

# An ingest scope applies only to the entries of that native upload.
ingest_ok(s) if not s.ingest

ingest_ok(s) if s.ingest == input.ingest_source

interaction_ok(s) if not s.interactions

interaction_ok(s) if req.interaction in s.interactions

decision := outcome.deny(["missing-resource"], [], []) if {
	not req.has_resource
} else := outcome.deny(["no-write-scope"], [], []) if {
	count(scopes) == 0
} else := outcome.deny(["resource-type-not-writable"], [], []) if {
	count(covering) == 0
} else := outcome.deny(sort(failures), [], []) if {
	count(granted) == 0
} else := outcome.allow(
	sort({sprintf("write-scope:%s", [s.id]) | some s in granted}),
	sort({o | some s in granted; some o in s.obligations}),
	sort({b | some s in granted; some b in s.legal_basis}),
)

failures contains r if {
	some s in covering
	some r in unmet(s)
}
