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
