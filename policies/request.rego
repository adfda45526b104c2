# The request as the rules see it: input validation (fail closed on anything
# malformed) and normalised facts derived from input and the matrix data.
# Every other package reads the request through this one.
package parcours.request

import data.parcours.matrix

# ---------------------------------------------------------------------------
# Validation. Any error denies the request (parcours.authz).

# Beware: `not f(x)` is false, not true, when x is undefined (the call is
# undefined before the negation applies). Presence is therefore tested
# through the helper rules below, never as `not f(input.field)`.

errors contains "malformed-input" if not input_is_object

errors contains "missing-subject" if not subject_is_object

errors contains "missing-actor-type" if {
	subject_is_object
	not has_actor_type
}

errors contains "unknown-actor-type" if {
	has_actor_type
	not matrix.actor_types[input.subject.actor_type]
}

errors contains "missing-subject-patient" if {
	input.subject.actor_type == "patient"
	not has_subject_patient
}

errors contains "malformed-token-purposes" if {
	subject_is_object
	not token_purposes_is_array
}

errors contains "malformed-care-teams" if {
	c := input.subject.care_teams
	c != null
	not is_array(c)
}

errors contains "missing-purpose" if not has_purpose

errors contains "unknown-purpose" if {
	has_purpose
	not matrix.purposes[input.purpose]
}

errors contains "purpose-not-in-token" if {
	has_purpose
	token_purposes_is_array
	not input.purpose in input.subject.purposes
}

errors contains "missing-now" if not now_is_string

errors contains "malformed-now" if {
	now_is_string
	not valid_time(input.now)
}

errors contains "unknown-interaction" if not known_interaction

errors contains "unknown-operation" if {
	input.interaction == "operation"
	not matrix.operations[input.operation]
}

errors contains "malformed-resource-type" if {
	t := input.resource_type
	t != null
	not is_string(t)
}

errors contains "malformed-aggregate" if {
	a := input.aggregate
	a != null
	not is_boolean(a)
}

errors contains "malformed-measure-topics" if {
	t := input.measure_topics
	t != null
	not is_array(t)
}

errors contains "malformed-break-glass" if {
	b := input.break_glass
	b != null
	not is_object(b)
}

errors contains "malformed-resource" if {
	r := input.resource
	r != null
	not is_object(r)
}

errors contains "malformed-resource" if {
	has_resource
	not resource_has_type
}

errors contains "malformed-security-labels" if {
	has_resource
	l := input.resource.security_labels
	l != null
	not is_array(l)
}

errors contains "malformed-allowed-purposes" if {
	has_resource
	a := input.resource.allowed_purposes
	a != null
	not is_array(a)
}

errors contains "malformed-patient" if {
	p := input.patient
	p != null
	not is_object(p)
}

errors contains "malformed-consents" if {
	has_patient
	c := input.patient.consents
	c != null
	not is_array(c)
}

errors contains "malformed-consents" if {
	some c in consents
	not is_object(c)
}

errors contains "malformed-consents" if {
	some c in consents
	p := c.provisions
	p != null
	not is_array(p)
}

errors contains "malformed-consents" if {
	some c in consents
	some p in provisions_of(c)
	not well_formed_provision(p)
}

well_formed_provision(p) if {
	is_object(p)
	p.type in {"permit", "deny"}
	every key in ["actors", "purposes", "classes", "security_labels"] {
		optional_array(p, key)
	}
	optional_object(p, "period")
}

optional_array(obj, key) if object.get(obj, key, null) == null

optional_array(obj, key) if is_array(obj[key])

optional_object(obj, key) if object.get(obj, key, null) == null

optional_object(obj, key) if is_object(obj[key])

errors_sorted := sort(errors)

input_is_object if is_object(input)

subject_is_object if is_object(input.subject)

has_actor_type if nonempty(input.subject.actor_type)

has_subject_patient if nonempty(input.subject.patient)

token_purposes_is_array if is_array(input.subject.purposes)

has_purpose if nonempty(input.purpose)

now_is_string if is_string(input.now)

known_interaction if matrix.interactions[input.interaction]

resource_has_type if nonempty(input.resource.type)

# ---------------------------------------------------------------------------
# Normalised facts.

nonempty(s) if {
	is_string(s)
	trim_space(s) != ""
}

# Checked by shape before parsing: the engine runs with strict builtin
# errors, where a failed parse is an evaluation error.
rfc3339 := `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`

valid_time(s) if {
	is_string(s)
	regex.match(rfc3339, s)
	time.parse_rfc3339_ns(s)
}

now_ns := time.parse_rfc3339_ns(input.now) if valid_time(input.now)

actor := input.subject.actor_type

actor_info := matrix.actor_types[actor]

purpose := input.purpose

purpose_info := matrix.purposes[purpose]

column := purpose_info.column

interaction := input.interaction

operation_info := matrix.operations[input.operation] if interaction == "operation"

# class: read (read, vread, history, search, read-like operations), write,
# bundle (a whole transaction/batch), or the operation classes terminology,
# ingest and process.
class := c if {
	interaction != "operation"
	c := matrix.interactions[interaction].class
} else := "read" if {
	operation_info.class in {"read", "aggregate"}
} else := operation_info.class

# collection: the answer holds many resources (search, type/system history,
# $everything, $pathway).
default collection := false

collection if matrix.interactions[interaction].collection

collection if operation_info.class == "read"

has_resource if is_object(input.resource)

# A request-level decision is taken before the server holds the resource(s).
request_level if not has_resource

# The resource type the decision is about: the resource's own type when one
# resource is decided, otherwise the type the request addresses ("" for
# system-level requests).
resource_type := input.resource.type if {
	has_resource
} else := input.resource_type if {
	is_string(input.resource_type)
} else := ""

default aggregate := false

aggregate if input.aggregate == true

aggregate if operation_info.class == "aggregate"

labels := {l | some l in object.get(input, ["resource", "security_labels"], [])}

has_patient if is_object(input.patient)

in_care_team if input.patient.care_team.member == true

is_self if input.patient.is_self == true

consents := c if {
	has_patient
	c := input.patient.consents
	is_array(c)
} else := []

provisions_of(c) := p if {
	p := c.provisions
	is_array(p)
} else := []

has_break_glass if {
	nonempty(input.break_glass.reason)
	not break_glass_expired
}

# The override is time-boxed: the server opens a window (default 4 h) at the
# first justified access and sends its end; past it, the justification no
# longer counts.
break_glass_expired if {
	nonempty(input.break_glass.expires)
	valid_time(input.break_glass.expires)
	now_ns >= time.parse_rfc3339_ns(input.break_glass.expires)
}

# The caller as consent provisions name it.
caller_ids contains input.subject.org if nonempty(input.subject.org)

caller_ids contains input.subject.rpps if nonempty(input.subject.rpps)

caller_ids contains sprintf("https://rpps.esante.gouv.fr|%s", [input.subject.rpps]) if nonempty(input.subject.rpps)

caller_ids contains t if {
	some t in input.subject.care_teams
	nonempty(t)
}

source_org := s if {
	s := input.resource.source_org
	is_string(s)
} else := ""

# Reads of existing data: the resource must come from the caller's
# organisation (an unknown source is not the caller's).
from_own_org if {
	nonempty(input.subject.org)
	source_org == input.subject.org
}

# Writes: a new resource (no source yet) or one the caller's organisation
# supplied. A resource an actor without organisation supplied (a patient's
# own Consent, the hub's derived EpisodeOfCare) is no organisation's: an
# empty source organisation is a new resource only when no actor supplied
# it (once any organisation's: a clinician withdrew a patient's objection).
writable_by_own_org if {
	nonempty(input.subject.org)
	source_org == input.subject.org
}

writable_by_own_org if {
	nonempty(input.subject.org)
	source_org == ""
	not nonempty(object.get(input.resource, "source_actor", ""))
}
