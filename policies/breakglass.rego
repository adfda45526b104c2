# Break-the-glass: a justified emergency override for the actor types that
# may use it (matrix actor_types[*].break_glass), in the BTG column only.
# It lifts opt-out objections and R/sensitive labels, never V.
package parcours.breakglass

import data.parcours.cells
import data.parcours.request as req

# The cell is a break-glass cell (hospital clinician, GP in column BTG).
cell_requires if cells.cell.break_glass == true

# The override is in effect: break-glass cell, entitled actor, justification.
in_effect if {
	cell_requires
	req.actor_info.break_glass == true
	req.has_break_glass
}

# Break-the-glass opens one patient's record, as the DMP's "bris de glace":
# a decision about one resource, an interaction on one resource, or a
# search the server found restricted to one patient (input.one_patient:
# a compartment search, or patient/subject/_id naming one patient), never
# a search or history across patients (black-box review: one justified
# search returned every patient of the hub).
one_patient if req.has_resource

one_patient if input.interaction in {"read", "vread", "history-instance"}

one_patient if input.operation in {"$everything", "$pathway"}

one_patient if input.one_patient == true

# A justification sent by an actor type that may never break the glass.
refused if {
	req.column == "BTG"
	req.has_break_glass
	not req.actor_info.break_glass
}

obligations := [
	{"type": "audit"},
	{"type": "notify", "target": "privacy-officer"},
	{"type": "notify", "target": "patient"},
]
