# Reads: read, vread, history, search and the read-like operations
# ($everything, $pathway, $evaluate-measure). One matrix cell decides; the
# checks run from the most general (cell, type scope) to the most specific
# (labels, ownership, consents), and the first refusal wins.
package parcours.reads

import data.parcours.breakglass
import data.parcours.cells
import data.parcours.consent
import data.parcours.labels
import data.parcours.matrix
import data.parcours.outcome
import data.parcours.request as req

cell := cells.cell

ref := cells.ref

basis := cells.legal_basis

# Terminology and definitions (CodeSystem, ValueSet, ConceptMap…) carry no
# personal data: any authenticated actor may read them for its purposes.
decision := outcome.allow(["terminology-no-personal-data"], [], ["no-personal-data"]) if {
	req.resource_type in matrix.type_lists.terminology
	input.interaction != "operation"
	not req.aggregate
} else := outcome.deny(["audit-log-for-auditors-only", ref], [], []) if {
	# The decision log is read for compliance audits only (HCOMPL).
	req.resource_type == "AuditEvent"
	req.column != "AUDIT"
} else := outcome.deny(
	array.concat(["cell-not-applicable", ref], break_glass_refused),
	[],
	[],
) if {
	cell.kind == "not-applicable"
} else := outcome.deny([cells.scope_reason, ref], [], []) if {
	not cells.in_scope
} else := outcome.deny(["aggregate-only", ref], per_patient_alert, []) if {
	cell.kind == "aggregate"
	not req.aggregate
} else := outcome.deny(["aggregate-not-for-this-cell", ref], [], []) if {
	req.aggregate
	not aggregate_allowed
} else := outcome.deny(["measure-topic-not-for-purpose", ref], [], []) if {
	input.operation == "$evaluate-measure"
	not measure_topic_allowed
} else := outcome.deny(array.concat(["break-glass-reason-missing", ref], break_glass_refused), [], []) if {
	breakglass.cell_requires
	not breakglass.in_effect
} else := outcome.deny(["break-glass-one-patient-only", ref], [], []) if {
	breakglass.in_effect
	not breakglass.one_patient
} else := outcome.deny([labels.denial, ref], [], []) if {
	req.has_resource
	labels.denial
} else := outcome.deny(["purpose-not-declared-by-source", ref], [], []) if {
	req.has_resource
	not source_declares_purpose
	not breakglass.in_effect
} else := outcome.deny(["not-own-organisation", ref], [], []) if {
	cell.own_org == true
	req.has_resource
	not req.from_own_org
} else := outcome.deny(["not-own-record", ref], [], []) if {
	cell.self == true
	not req.request_level
	not req.is_self
} else := outcome.deny(["not-own-record", ref], [], []) if {
	cell.self == true
	req.has_patient
	not req.is_self
} else := outcome.deny(array.concat(["patient-objection", ref], consent_refs(consent.objections)), [], []) if {
	objection_applies
	consent.objected
} else := grant

# grant: the cell kind's answer once every refusal above was ruled out.
grant := outcome.allow(["break-the-glass", ref], array.concat(breakglass.obligations, extra), basis) if {
	breakglass.in_effect
} else := outcome.allow([object.get(cell, "reason", "matrix-allow"), ref], extra, basis) if {
	cell.kind == "allow"
} else := outcome.allow(["pseudonymised-only", ref], array.concat([pseudonymise], extra), basis) if {
	cell.kind == "pseudonymised"
} else := outcome.allow(["aggregate-only", ref], extra, basis) if {
	cell.kind == "aggregate"
} else := individual_care if {
	cell.kind in {"opt-out", "consent"}
}

# Opt-out (inside the care team) and consent cells.
individual_care := outcome.allow([per_resource_reason, ref], extra, basis) if {
	req.request_level
	not req.has_patient
} else := outcome.allow(["no-patient-data", ref], extra, basis) if {
	not req.has_patient
	req.resource_type in matrix.type_lists["non-patient"]
} else := outcome.deny(["patient-context-missing", ref], [], []) if {
	not req.has_patient
} else := outcome.allow(["care-team-opt-out-no-objection", ref], extra, basis) if {
	cell.kind == "opt-out"
	req.in_care_team
} else := outcome.allow(array.concat([consent_reason, ref], consent_refs(care_permits)), extra, basis) if {
	count(care_permits) > 0
} else := outcome.deny([no_consent_reason, ref], [], [])

# care_permits: outside the care team (opt-out cells) only a permit naming
# the caller opens the record; in consent cells any applicable permit.
care_permits := consent.named_permits if {
	cell.kind == "opt-out"
} else := consent.permits

per_resource_reason := "opt-out-checked-per-resource" if {
	cell.kind == "opt-out"
} else := "consent-checked-per-resource"

consent_reason := "outside-care-team-opt-in-consent" if {
	cell.kind == "opt-out"
} else := "opt-in-consent-permit"

no_consent_reason := "outside-care-team-no-consent" if {
	cell.kind == "opt-out"
} else := "consent-required"

consent_refs(ids) := [sprintf("consent:%s", [id]) | some id in sort(ids)]

# GDPR art. 5(1)(b): when the source declared the purposes its data may serve
# (resource.allowed_purposes, set at ingestion), the request's purpose, or
# another code of its column, must be one of them. Absent: no restriction.
# Without a declaration on the resource, the source actor's row of
# matrix.source_columns (if any) declares the columns its data may serve:
# the liability insurer's claims register serves liability, risk feedback
# and audit, not care.
source_declares_purpose if {
	object.get(input.resource, "allowed_purposes", null) == null
	not matrix.source_columns[object.get(input.resource, "source_actor", "")]
}

source_declares_purpose if {
	object.get(input.resource, "allowed_purposes", null) == null
	req.column in matrix.source_columns[input.resource.source_actor]
}

source_declares_purpose if req.purpose in input.resource.allowed_purposes

source_declares_purpose if {
	some code in input.resource.allowed_purposes
	matrix.purposes[code].column == req.column
}

# Patient objections bind every cell but those of mandated flows, the
# patient's own access, and break-the-glass.
objection_applies if {
	not cell.ignores_objection
	not breakglass.in_effect
}

# $evaluate-measure: one of the Measure's topics (input.measure_topics) must
# be open to the purpose's column (matrix.measure_topics); none given denies.
measure_topic_allowed if {
	some t in object.get(input, "measure_topics", [])
	t in object.get(matrix.measure_topics, req.column, [])
}

# Aggregates are for cells whose answer is not individual care.
aggregate_allowed if cell.kind in {"aggregate", "pseudonymised"}

aggregate_allowed if {
	cell.kind == "allow"
	not cell.self
	not cell.break_glass
}

break_glass_refused := ["break-glass-not-permitted-for-actor"] if {
	breakglass.refused
} else := []

per_patient_alert := [outcome.alert] if {
	req.actor_info.alert_on_per_patient == true
} else := []

pseudonymise := {"type": "pseudonymise", "domain": cells.pseudonym_domain}

# Obligations every allow carries when they apply.
extra := array.concat(filter_obligation, aggregate_obligation)

filter_obligation := [outcome.filter] if {
	needs_filter
} else := []

aggregate_obligation := [{"type": "aggregate", "k": matrix.aggregation.k}] if {
	req.aggregate
} else := []

# A request-level allow needs per-resource checks unless the answer is an
# aggregate (of the caller's own data: filtered too) or the cell depends on
# nothing per resource and the type carries no patient data.
needs_filter if {
	req.request_level
	not req.aggregate
	not unconditional
}

needs_filter if {
	req.request_level
	req.aggregate
	cell.own_org == true
}

unconditional if {
	cell.kind == "allow"
	not cell.own_org
	not cell.self
	not cell.break_glass
	req.resource_type in matrix.type_lists.unfiltered
}
