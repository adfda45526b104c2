# The purpose matrix (data.parcours.matrix.cells): which cell of the
# actor-type row and purpose column applies to the request.
package parcours.cells

import data.parcours.matrix
import data.parcours.outcome
import data.parcours.request as req

not_applicable := {"kind": "not-applicable", "legal_basis": [], "note": "no cell: deny by default"}

row_cell := c if {
	c := matrix.cells[req.actor][req.column]
} else := not_applicable

# A cell may refine one purpose code of its column (by_purpose).
raw := c if {
	c := row_cell.by_purpose[req.purpose]
} else := row_cell

# A cell limited to a type list (types) may name the cell that applies to the
# other types (fallback).
cell := raw.fallback if {
	raw.types
	not type_in_scope(raw)
	is_object(raw.fallback)
} else := raw

kind := cell.kind

ref := sprintf("cell:%s:%s", [req.actor, req.column])

legal_basis := object.get(cell, "legal_basis", [])

never if raw.kind == "never"

never_decision := outcome.deny(
	["matrix-never", ref],
	[outcome.alert],
	object.get(raw, "legal_basis", []),
)

# The type is inside the cell's type list. A system-level request (no type)
# is in scope: the server checks every result (filter obligation).
in_scope if type_in_scope(cell)

type_in_scope(c) if not c.types

type_in_scope(c) if req.resource_type in matrix.type_lists[c.types]

type_in_scope(c) if {
	c.types
	req.request_level
	req.resource_type == ""
}

scope_reason := r if {
	r := cell.scope_reason
} else := "resource-type-out-of-scope"

pseudonym_domain := d if {
	d := cell.domain
} else := d if {
	d := req.purpose_info.pseudonym_domain
} else := "care"
