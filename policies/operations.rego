# Requests that are neither a read nor a single write: terminology
# operations, native file ingestion, process operations ($detect-ruptures),
# and a transaction/batch Bundle as a whole.
package parcours.operations

import data.parcours.cells
import data.parcours.consent
import data.parcours.matrix
import data.parcours.outcome
import data.parcours.request as req
import data.parcours.writes

decision := terminology if {
	req.class == "terminology"
} else := ingest if {
	req.class == "ingest"
} else := process if {
	req.class == "process"
} else := bundle if {
	req.class == "bundle"
}

# $translate and other terminology operations carry no personal data.
terminology := outcome.allow(["terminology-no-personal-data"], [], ["no-personal-data"])

# $ingest: the source (input.ingest_source) must be one the actor type feeds
# for this purpose; each produced resource is then decided as a create
# (filter obligation).
ingest := outcome.deny(["missing-ingest-source"], [], []) if {
	not has_ingest_source
} else := outcome.deny(["unknown-ingest-source"], [], []) if {
	not matrix.ingest_sources[input.ingest_source]
} else := outcome.deny(["ingest-source-not-permitted"], [], []) if {
	src := matrix.ingest_sources[input.ingest_source]
	not ingest_permitted(src)
} else := outcome.allow(
	[sprintf("ingest-source:%s", [input.ingest_source])],
	[outcome.filter, outcome.omit_content],
	write_basis,
)

has_ingest_source if req.nonempty(input.ingest_source)

ingest_permitted(src) if {
	req.actor in src.actors
	req.purpose in src.purposes
}

write_basis := sort(write_bases)

# Process operations: data.parcours.matrix.operations[op].actors names the
# actor types and purposes that may run them; "patient": true limits a run to
# one patient of the caller's care team who has not objected.
process := outcome.deny(["operation-not-permitted", cells.ref], [], []) if {
	not process_entry
} else := outcome.deny(["single-patient-run-not-permitted", cells.ref], [], []) if {
	# An actor that may run the operation over all patients only (no
	# "patient": true) may not run it for one: the answer about one
	# patient (its ruptures) is that patient's health data.
	object.get(process_entry, "patient", false) != true
	req.has_patient
} else := outcome.deny(["patient-required", cells.ref], [], []) if {
	process_entry.patient == true
	not req.has_patient
} else := outcome.deny(["not-in-care-team", cells.ref], [], []) if {
	process_entry.patient == true
	not req.in_care_team
} else := outcome.deny(["patient-objection", cells.ref], [], []) if {
	process_entry.patient == true
	consent.objected
} else := outcome.allow(
	[sprintf("operation:%s", [input.operation]), cells.ref],
	object.get(process_entry, "obligations", []),
	cells.legal_basis,
)

process_entry := e if {
	e := req.operation_info.actors[req.actor]
	req.purpose in e.purposes
}

# A Bundle as a whole: allowed (filter: decide each entry) when the actor type
# may write or read anything for this purpose.
bundle := outcome.allow(["bundle-entries-decided-one-by-one", cells.ref], [outcome.filter], bundle_basis) if {
	count(bundle_basis) > 0
} else := outcome.deny(["no-write-scope", cells.ref], [], [])

bundle_basis := sort(write_bases | read_bases)

write_bases contains b if {
	some s in writes.scopes
	some b in s.legal_basis
}

read_bases contains b if {
	cells.kind != "not-applicable"
	some b in cells.legal_basis
}
