// Package pathway turns one patient's stored FHIR resources into dated
// facts, detects pathway ruptures (domain brief §6) with rules that are
// data, and groups the facts into pathway episodes. It sits under server:
// the server reads a patient's compartment, calls Facts, then Detect
// ($detect-ruptures, DetectedIssue, Measures) and Episodes (EpisodeOfCare).
// It is a leaf: it imports mappings/vocab (URLs, systems, stages) and
// nothing from server, and it neither reads nor writes storage.
//
//	Facts(resources []map[string]any) Patient                  one patient's resources → facts
//	Detect(rules []Rule, p Patient, asOf time.Time) []Finding  the windowed anti-join of brief §6
//	InPeriod(f Finding, start, end time.Time) bool             the index date is in [start, end]
//	ParseRule, ParseRules, DefaultRules, DefaultRulesJSON       rules as JSON (ruptures.json)
//	Episodes(p Patient) []Episode, EpisodesOf(pathways, p)     pathway episodes (pathways.json)
//	ParsePathways, DefaultPathways, DefaultPathwaysJSON        the pathways table
//
// # Facts
//
// Facts takes decoded JSON: the Patient, the resources of its compartment,
// and the support resources they reference that are not in the compartment
// (Practitioner, PractitionerRole, Organization, Location). Without them a
// performer has no specialty and an establishment is the bare reference.
// Nothing fails: missing or malformed elements leave fields empty. Choices:
//
//   - References: a fact's Ref is <Type>/<id> (<Type>/#<position in the
//     list> without id). References are read as Type/id, dropping a base
//     URL and /_history/n; urn:uuid references are kept whole; contained
//     (#id) ones are looked up in the resource's contained list.
//   - Patient: the first Patient of the list. Ref is Patient/<id>.
//     Department comes from the postalCode of the first address with one
//     (the first "home" address when there is one): two characters, three
//     for 97x/98x (overseas), 2A for 200xx–201xx and 2B for 202xx–206xx.
//   - Death: Patient.deceasedDateTime, else the end of a stay discharged by
//     death (PMSI mode 9 or HL7 discharge-disposition exp).
//     deceasedBoolean true alone sets Deceased without a date.
//   - Dates are calendar days at 00:00 UTC, read as written (the time and
//     zone of a dateTime are dropped; a partial date takes its first day).
//     Start per type: Encounter period.start (period.end when only it is
//     given); Condition onset[x], else its Encounter's period.start, else
//     recordedDate; Procedure performed[x]; Observation effective[x], else
//     issued; MedicationDispense whenHandedOver, else whenPrepared;
//     MedicationRequest authoredOn; Immunization occurrenceDateTime, else
//     recorded; ServiceRequest authoredOn, else occurrence[x]; CarePlan
//     period.start, else created; AdverseEvent date, else detected, else
//     recordedDate; ExplanationOfBenefit and Claim billablePeriod, else
//     created. End is the end of the period (period.end, abatement[x],
//     performedPeriod.end…), Start + daysSupply days for a dispensation,
//     Start for a point in time (a dateTime, a dispensation without supply,
//     an immunisation, an adverse event), and zero for an interval without
//     end: an ongoing stay (no discharge, so no "end"-dated index event),
//     an active Condition, an open CarePlan.
//   - Codes: every coding of Condition/Procedure/Observation/
//     DiagnosticReport/ServiceRequest.code, Medication*.
//     medicationCodeableConcept, Immunization.vaccineCode, Encounter.type,
//     serviceType and class, AdverseEvent.event and category, CarePlan
//     category and activity.detail.code, Claim/ExplanationOfBenefit type and
//     item.productOrService. Medication references are not resolved.
//   - Stage: the pathway-stage extension; StageTop its top-level stage.
//     Source actor and organisation: meta.source urn:parcours:<actor>:<org>.
//   - Diagnosis role: the pmsi-diagnosis-type extension on the Condition,
//     else Encounter.diagnosis.use (pmsi-diagnosis-type coding), else DP for
//     rank 1. A Condition belongs to Condition.encounter, else to the
//     Encounter whose diagnosis lists it; the Encounter fact lists its
//     Conditions in Diagnoses (this is how a rule asks for "a stay with DP
//     I50").
//   - Specialties: Encounter.participant.individual, performer (or
//     performer.actor) of Procedure, Observation, DiagnosticReport,
//     MedicationDispense and Immunization, requester of MedicationRequest
//     and ServiceRequest, resolved to a PractitionerRole (its specialty) or
//     a Practitioner (its qualification codes and the specialties of the
//     PractitionerRoles that point to it).
//   - Establishment: the FINESS identifier of Encounter.serviceProvider
//     (or of Claim/EOB provider, or of the managingOrganization of an
//     AdverseEvent's location, contained or not), else the reference. Facts
//     of an Encounter inherit its establishment.
//   - Costs: the indemnity extension of an AdverseEvent (reserve, paid),
//     Claim.total, ExplanationOfBenefit.total[] and payment.amount.
//   - Resources with status entered-in-error are dropped; other statuses
//     are kept in Fact.Status for rules to filter.
//   - Facts are sorted by Start (undated first), type, then reference.
//     Undated facts never fall in a window.
//
// # Rules as data
//
// A rules file is a JSON array of rules; ParseRule reads one object. The
// parser is strict: an unknown field, a wrong type or a bad value is an
// Issue with its JSON path ($[0].window.end.inclusive), and every issue is
// reported (DataError). All thresholds live in the JSON. A rule:
//
//	{
//	  "id": "R1",                          // unique, letters, digits . _ -
//	  "code": "no-gp-after-discharge",     // a code of rupture-parcours
//	  "version": "1.0.0", "title": "…", "description": "…",
//	  "kind": "absence",                   // absence | occurrence
//	  "severity": "high",                  // high | moderate | low (DetectedIssue.severity)
//	  "index": {"match": Criteria, "date": "end", "onlyFirst": false},
//	  "asOf": {"anyOf": [Event…]},         // instead of index
//	  "pathway": "type-2-diabetes",        // asOf rules: the episode type their findings belong to
//	  "population": {"minAge": 18, "maxAge": 74, "sex": ["female"], "exclude": [Event…]},
//	  "window": {"start": {"days": 0, "inclusive": false}, "end": {"days": 7, "inclusive": true}},
//	  "expected": [Event…],                // absence rules
//	  "unwanted": [Event…],                // occurrence rules
//	  "censor": [{"reason": "death", "death": true}, {"reason": "readmission", "match": Criteria}],
//	  "cost": {"perspective": "AMO", "currency": "EUR", "basis": "downstream", "horizonDays": 30,
//	           "table": [{"item": "inpatient-stay", "match": Criteria, "default": 4000,
//	                      "prices": [{"system": "…/ghm", "prefix": "05M09", "amount": 3900}]}]}
//	}
//
// Index rules give one finding per index event: a fact matching
// index.match, its index date being its Start ("start", the default) or
// End ("end": a stay's discharge). onlyFirst keeps the patient's earliest
// matching fact (by index date), to which the population filters then
// apply. asOf rules give one finding per patient at the evaluation date:
// patients alive then, passing the population filters, and having any of
// the anyOf events (everyone when anyOf is empty); the index date is the
// evaluation date.
//
// A window bound is an offset from the index date (years, months, days,
// applied in that order by time.AddDate, which normalises: 31 March − 1
// month is 3 March) and says whether the bound day belongs to the window
// ("inclusive", required on both bounds). "addDaysSupply": true adds the
// index dispensation's days of supply to the bound (index rules only).
// (discharge, discharge + 7 days] is start {days 0, inclusive false}, end
// {days 7, inclusive true}.
//
// An Event is {"match": Criteria, "window": Window, "minCount": n,
// "distinctDates": true}: at least minCount (default 1) matching facts
// dated in the window, counted once per day with distinctDates. An
// expected, unwanted or censoring event without a window uses the rule's
// window; an asOf or exclusion event without one looks at the whole record
// up to the index date. Events use the fact's Start.
//
// Criteria select facts; every present field must hold, and within a list
// any element may match:
//
//	resourceTypes                  required: Encounter, Condition, Procedure, Observation, …
//	codes, excludeCodes            [CodeSet]: some code in (none in) the sets
//	class                          Encounter class codes (IMP, AMB, VR, HH, EMER)
//	serviceType                    [CodeSet] on Encounter.serviceType (PMSI field)
//	diagnosis                      {"role": ["DP","DR"], "codes": [CodeSet]}: an Encounter with such a Condition
//	diagnosisRole                  a Condition's PMSI role (DP, DR, DAS, DAD)
//	admitSource                    [CodeSet] on Encounter.hospitalization.admitSource
//	dischargeDisposition, excludeDischargeDisposition   [CodeSet] on dischargeDisposition
//	performerSpecialty             [CodeSet] on the performers' specialties
//	interpretation                 [CodeSet] on Observation.interpretation
//	stage                          parcours-stage codes; a top-level stage matches its children
//	status, sourceActor            resource status, meta.source actor
//	sameCodeAsIndex                {"system": "…", "prefixLength": 3}: a code shared with the index fact
//
// A CodeSet is {"system": "…", "codes": [exact], "prefixes": [starts]}.
// Codes compare ignoring ASCII case and dots, so "I50" is a prefix of
// I50.9 and I509, and "S72.0" of S72.01.
//
// # Detection (brief §6, the windowed anti-join)
//
// asOf is taken as its calendar day (Day). For every rule and index event
// dated on or before asOf (or asOf patient) that passes the population
// filters and exclusions, with W the window around the index date and
// only facts dated on or before asOf:
//
//   - e = the first day an expected (unwanted) event is satisfied in its
//     window; c = the first censoring day (death in the window, or a
//     matching fact in the censor's window). The index fact never counts.
//   - absence: met when e exists and e ≤ c (or no c); else censored when c
//     exists; else pending when W's last day is after asOf; else rupture.
//   - occurrence: rupture when e exists and e ≤ c (or no c), with every
//     unwanted fact of the window (up to c) as evidence; else censored when
//     c exists; else pending while W is open; else met.
//
// So an expected event on the same day as a censoring event wins, and an
// expected event after a readmission does not undo the censoring. Cost:
// with basis "downstream", every fact in (index date, index date +
// horizonDays] up to asOf takes the first table item it matches, priced
// by the longest matching prefix or the default; with basis "unwanted"
// the unwanted events of a rupture are priced. Costs are computed for
// every finding (not only ruptures) so that a caller can compare; the
// direct downstream cost of brief §6 is the sum over ruptures. Finding.Key
// is "<rule id>|<index ref>", or "<rule id>|<patient ref>|<year>" for an
// asOf rule, so that DetectedIssues can be stored idempotently.
//
// # Default rules (ruptures.json)
//
// R1 no GP ≤ 7 days after a heart-failure discharge; R2 no HbA1c in 12
// months for a diabetic (asOf); R3-breast and R3-colorectal missed
// screening (asOf); R4 no rehabilitation ≤ 90 days after a myocardial
// infarction; R5 emergency readmission ≤ 30 days (occurrence); R6 more than
// 60 days without a dispensation after the supply runs out; R7 abnormal
// result not followed ≤ 30 days; R8 no osteoporosis treatment or
// densitometry ≤ 12 months after a fragility fracture; R9 cancer treatment
// not started ≤ 60 days after the first diagnosis; R10 no influenza
// vaccine in 12 months at 65 or more. Each rule's description states its
// exact definition and its [K] caveats; the cost tables are illustrative.
//
// # Episodes (pathways.json)
//
// A pathway is {"type": <pathway-type code>, "version", "title",
// "description", "population", "triggers": [Event…], "members":
// [Criteria…]}. The episode starts on the first day a trigger is satisfied
// over the whole record (minCount and distinctDates apply; triggers take
// no window), if the population filters pass at that day. Its members are
// the facts counted by the trigger plus every fact dated from the start on
// that matches a trigger or a members criteria; Condition is the first
// Condition among them that matches a trigger; the stage is the stage of
// the latest member that has one; the status is finished (End = date of
// death) when the patient died, active otherwise. Key is
// "<patient ref>|<type>".
package pathway
