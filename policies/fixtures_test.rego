# Shared test inputs (test support only: no test_ rules here). Every input
# follows the contract of README.md; tests change one thing with
# object.union.
package parcours.fixtures_test

now := "2026-11-22T17:30:00Z"

org_a := "https://finess.esante.gouv.fr|750000001"

org_b := "https://finess.esante.gouv.fr|750000002"

subject(actor, purposes) := {
	"sub": "user-1",
	"actor_type": actor,
	"org": org_a,
	"rpps": "10001234567",
	"care_teams": ["CareTeam/ct-1"],
	"purposes": purposes,
}

patient(member, consents) := {
	"pseudonym": "p-9f3",
	"is_self": false,
	"care_team": {"member": member, "via": ["encounter"]},
	"consents": consents,
}

resource(type) := {
	"type": type,
	"id": "r-1",
	"source_actor": "hospital-it",
	"source_org": org_a,
	"security_labels": ["N"],
}

# A read, by actor for purpose, of one Observation of org_a about a patient in
# the caller's care team, without consents.
read(actor, purpose) := {
	"now": now,
	"subject": subject(actor, [purpose]),
	"purpose": purpose,
	"break_glass": null,
	"interaction": "read",
	"resource_type": "Observation",
	"aggregate": false,
	"resource": resource("Observation"),
	"patient": patient(true, []),
}

# read of another resource type.
read_type(actor, purpose, type) := object.union(read(actor, purpose), {"resource_type": type, "resource": {"type": type}})

# read with the patient outside the caller's care team, with these consents.
outside(actor, purpose, consents) := object.union(read(actor, purpose), {"patient": patient(false, consents)})

# read inside the care team, with these consents.
inside(actor, purpose, consents) := object.union(read(actor, purpose), {"patient": patient(true, consents)})

# read of a resource with these security labels.
labelled(actor, purpose, labels) := object.union(read(actor, purpose), {"resource": {"security_labels": labels}})

# A request-level search of a type: no resource, no patient.
search(actor, purpose, type) := {
	"now": now,
	"subject": subject(actor, [purpose]),
	"purpose": purpose,
	"break_glass": null,
	"interaction": "search-type",
	"resource_type": type,
	"aggregate": false,
}

# A request-level aggregate ($evaluate-measure answering a MeasureReport).
aggregate(actor, purpose) := {
	"now": now,
	"subject": subject(actor, [purpose]),
	"purpose": purpose,
	"break_glass": null,
	"interaction": "operation",
	"operation": "$evaluate-measure",
	"resource_type": "Measure",
	"aggregate": true,
	"measure_topics": ["prevention", "care-quality", "liability"],
}

# $evaluate-measure of a Measure with these topics.
measure(actor, purpose, topics) := object.union(aggregate(actor, purpose), {"measure_topics": topics})

# A write of one resource of type by actor for purpose, source org as given
# ("" for a new resource).
write(actor, purpose, interaction, type, source_org) := {
	"now": now,
	"subject": subject(actor, [purpose]),
	"purpose": purpose,
	"break_glass": null,
	"interaction": interaction,
	"resource_type": type,
	"aggregate": false,
	"resource": object.union(resource(type), {"source_org": source_org, "source_actor": write_source_actor(source_org)}),
	"patient": patient(true, []),
}

# A new resource has no source yet; an existing one came from an actor.
write_source_actor("") := ""

write_source_actor(org) := "hospital-it" if org != ""

# A read with a break-the-glass justification.
btg(actor, purpose, reason) := object.union(outside(actor, purpose, []), {"break_glass": {"reason": reason}})

# Consents. One provision each; period optional.
consent(id, status, policy, type, actors, purposes) := {
	"id": id,
	"status": status,
	"scope": "patient-privacy",
	"policy": policy,
	"provisions": [{"type": type, "actors": actors, "purposes": purposes}],
}

optin(actors, purposes) := consent("Consent/optin-1", "active", "OPTIN", "permit", actors, purposes)

optout(actors, purposes) := consent("Consent/optout-1", "active", "OPTOUT", "deny", actors, purposes)

with_period(c, start, end) := object.union(c, {"provisions": [object.union(c.provisions[0], {"period": {"start": start, "end": end}})]})

with_classes(c, classes) := object.union(c, {"provisions": [object.union(c.provisions[0], {"classes": classes})]})

# Evaluation helpers.

decide(x) := d if {
	d := data.parcours.authz.decision with input as x
}

allowed(x) if decide(x).allow == true

denied(x) if decide(x).allow == false

denied_because(x, reason) if {
	d := decide(x)
	d.allow == false
	reason in d.reasons
}

allowed_because(x, reason) if {
	d := decide(x)
	d.allow == true
	reason in d.reasons
}

alerted(x) if {
	d := decide(x)
	d.allow == false
	{"type": "alert"} in d.obligations
}

obliged(x, o) if {
	d := decide(x)
	d.allow == true
	o in d.obligations
}

not_obliged(x, o) if {
	d := decide(x)
	not o in d.obligations
}

# x with these security labels on its resource.
object_labels(x, labels) := object.union(x, {"resource": {"security_labels": labels}})
