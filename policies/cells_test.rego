package parcours.cells_test

import data.parcours.cells
import data.parcours.fixtures_test as fx
import data.parcours.matrix

kinds := {"allow", "opt-out", "consent", "pseudonymised", "aggregate", "never", "not-applicable"}

# Every cell of the matrix, refinements and fallbacks included.
all_cells contains [actor, column, c] if {
	some actor, row in matrix.cells
	some column, c in row
}

all_cells contains [actor, column, c] if {
	some actor, row in matrix.cells
	some column, base in row
	some _, c in base.by_purpose
}

all_cells contains [actor, column, c] if {
	some actor, row in matrix.cells
	some column, base in row
	c := base.fallback
}

# --- the data itself ---------------------------------------------------------

test_every_actor_type_has_a_row if {
	every actor, _ in matrix.actor_types {
		matrix.cells[actor]
	}
}

test_every_row_is_a_known_actor_type if {
	every actor, _ in matrix.cells {
		matrix.actor_types[actor]
	}
}

test_every_row_has_every_column if {
	every _, row in matrix.cells {
		every column, _ in matrix.columns {
			row[column].kind
		}
	}
}

test_every_cell_column_is_known if {
	every _, row in matrix.cells {
		every column, _ in row {
			matrix.columns[column]
		}
	}
}

test_every_cell_kind_is_known if {
	every t in all_cells {
		c := t[2]
		c.kind in kinds
	}
}

test_every_purpose_maps_to_a_column if {
	every _, p in matrix.purposes {
		matrix.columns[p.column]
		p.pseudonym_domain in {"care", "research", "liability"}
	}
}

test_every_column_has_a_purpose if {
	every column, _ in matrix.columns {
		some _, p in matrix.purposes
		p.column == column
	}
}

test_by_purpose_codes_belong_to_their_column if {
	every _, row in matrix.cells {
		every column, c in row {
			every code, _ in object.get(c, "by_purpose", {}) {
				matrix.purposes[code].column == column
			}
		}
	}
}

test_every_allowing_cell_has_a_legal_basis if {
	every t in all_cells {
		c := t[2]
		allowing_has_basis(c)
	}
}

allowing_has_basis(c) if c.kind in {"never", "not-applicable"}

allowing_has_basis(c) if count(c.legal_basis) > 0

test_every_never_cell_names_the_forbidding_text if {
	every t in all_cells {
		c := t[2]
		never_has_basis(c)
	}
}

never_has_basis(c) if c.kind != "never"

never_has_basis(c) if count(c.legal_basis) > 0

test_every_legal_basis_is_described if {
	every t in all_cells {
		c := t[2]
		every b in object.get(c, "legal_basis", []) {
			matrix.legal_texts[b]
		}
	}
	every s in matrix.writes {
		every b in s.legal_basis {
			matrix.legal_texts[b]
		}
	}
}

test_every_type_list_named_exists if {
	every t in all_cells {
		c := t[2]
		every name in [n | n := c.types] {
			matrix.type_lists[name]
		}
	}
	every s in matrix.writes {
		matrix.type_lists[s.types]
	}
}

test_pricing_and_marketing_never_for_every_actor if {
	every _, row in matrix.cells {
		row.PRICE.kind == "never"
		row.MKT.kind == "never"
	}
}

test_mutuals_never_on_care if {
	every actor in ["mutual-prevention", "mutual-claims"] {
		matrix.cells[actor]["TREAT/COC"].kind == "never"
		matrix.cells[actor].BTG.kind == "never"
	}
}

test_only_clinicians_and_gps_break_glass if {
	{a | some a, i in matrix.actor_types; i.break_glass == true} == {"hospital-clinician", "gp"}
	every t in all_cells {
		actor := t[0]
		c := t[2]
		break_glass_cell_ok(actor, c)
	}
}

break_glass_cell_ok(_, c) if not c.break_glass

break_glass_cell_ok(actor, c) if {
	c.break_glass == true
	matrix.actor_types[actor].break_glass == true
}

test_k_is_at_least_10 if matrix.aggregation.k >= 10

# --- the lookup --------------------------------------------------------------

test_cell_of_row_and_column if {
	cells.cell.kind == "opt-out" with input as fx.read("gp", "COC")
}

test_cell_refined_by_purpose if {
	cells.cell.kind == "pseudonymised" with input as fx.read("hospital-clinician", "HQUALIMP")
	cells.cell.kind == "allow" with input as fx.read("hospital-clinician", "HOPERAT")
}

test_cell_fallback_outside_type_list if {
	cells.cell.kind == "allow" with input as fx.read_type("public-health", "PUBHLTH", "AdverseEvent")
	cells.cell.kind == "pseudonymised" with input as fx.read_type("public-health", "PUBHLTH", "Observation")
}

test_missing_row_is_not_applicable if {
	cells.cell.kind == "not-applicable" with input as fx.read("gp", "TREAT")
		with data.parcours.matrix.cells as {}
}

test_never_uses_the_purpose_refinement if {
	cells.never with input as fx.aggregate("mutual-prevention", "prevention-programme-delivery")
	not cells.never with input as fx.aggregate("mutual-prevention", "prevention-programme-reporting")
}

test_pseudonym_domain_per_purpose if {
	cells.pseudonym_domain == "research" with input as fx.read("researcher", "HRESCH")
	cells.pseudonym_domain == "liability" with input as fx.read("liability-risk-manager", "liability-risk-analysis")
	cells.pseudonym_domain == "care" with input as fx.read("hospital-clinician", "HQUALIMP")
}

test_pseudonym_domain_cell_override if {
	cells.pseudonym_domain == "liability" with input as fx.read("liability-risk-manager", "HQUALIMP")
}

test_adding_a_cell_is_data_only if {
	# Give researchers aggregate-only public-health access, in data only.
	x := fx.aggregate("researcher", "PUBHLTH")
	fx.denied(x)
	d := data.parcours.authz.decision with input as x
		with data.parcours.matrix.cells.researcher.PH as {"kind": "aggregate", "legal_basis": ["GDPR-9-2-i"]}
	d.allow
	d.legal_basis == ["GDPR-9-2-i"]
}

test_never_cell_names_the_cell if {
	d := fx.decide(fx.read("mutual-claims", "TREAT"))
	"cell:mutual-claims:TREAT/COC" in d.reasons
	"matrix-never" in d.reasons
}
