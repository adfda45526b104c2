# Security labels of the resource (confidentiality R/V and sensitivity codes,
# data.parcours.matrix.labels). Restricted data is for hospital clinicians and
# GPs of the patient's care team acting for TREAT/COC; break-the-glass lifts R
# and sensitivity labels, never V.
package parcours.labels

import data.parcours.breakglass
import data.parcours.matrix
import data.parcours.request as req

very_restricted if {
	some l in req.labels
	l in matrix.labels.very_restricted
}

restricted if {
	some l in req.labels
	l in matrix.labels.restricted
}

restricted if {
	some l in req.labels
	l in matrix.labels.sensitive
}

restricted if very_restricted

hidden_from_patient if {
	some l in req.labels
	l in matrix.labels.hidden_from_patient
}

# The one context that may read any label.
cleared_for_care if {
	req.actor_info.label_cleared == true
	req.column == "TREAT/COC"
	req.in_care_team
}

# The patient reads R and sensitive data of their own record.
patient_self if {
	req.actor == "patient"
	req.is_self
}

# denial: the reason a labelled resource is refused (undefined: not refused).
# Only per-resource decisions are concerned (labels are on resources).
denial := "security-label-V-never-via-break-glass" if {
	very_restricted
	not cleared_for_care
	breakglass.in_effect
} else := "security-label-very-restricted" if {
	very_restricted
	not cleared_for_care
} else := "security-label-hidden-from-patient" if {
	hidden_from_patient
	patient_self
} else := "security-label-restricted" if {
	restricted
	not cleared_for_care
	not breakglass.in_effect
	not patient_self
	not req.aggregate
}
