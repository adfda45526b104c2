package fhirpath

import "testing"

// Search parameter expressions of R4 (clinical-patient, clinical-date and
// clinical-code are shared by many resource types), on Synthea resources.
const (
	clinicalPatient = "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | CareTeam.subject.where(resolve() is Patient) | ClinicalImpression.subject.where(resolve() is Patient) | Composition.subject.where(resolve() is Patient) | Condition.subject.where(resolve() is Patient) | Consent.patient | DetectedIssue.patient | DeviceRequest.subject.where(resolve() is Patient) | DeviceUseStatement.subject | DiagnosticReport.subject.where(resolve() is Patient) | DocumentManifest.subject.where(resolve() is Patient) | DocumentReference.subject.where(resolve() is Patient) | Encounter.subject.where(resolve() is Patient) | EpisodeOfCare.patient | FamilyMemberHistory.patient | Flag.subject.where(resolve() is Patient) | Goal.subject.where(resolve() is Patient) | ImagingStudy.subject.where(resolve() is Patient) | Immunization.patient | List.subject.where(resolve() is Patient) | MedicationAdministration.subject.where(resolve() is Patient) | MedicationDispense.subject.where(resolve() is Patient) | MedicationRequest.subject.where(resolve() is Patient) | MedicationStatement.subject.where(resolve() is Patient) | NutritionOrder.patient | Observation.subject.where(resolve() is Patient) | Procedure.subject.where(resolve() is Patient) | RiskAssessment.subject.where(resolve() is Patient) | ServiceRequest.subject.where(resolve() is Patient) | SupplyDelivery.patient | VisionPrescription.patient"
	clinicalDate    = "AllergyIntolerance.recordedDate | CarePlan.period | CareTeam.period | ClinicalImpression.date | Composition.date | Consent.dateTime | DiagnosticReport.effective | Encounter.period | EpisodeOfCare.period | FamilyMemberHistory.date | Flag.period | Immunization.occurrence | List.date | Observation.effective | Procedure.performed | (RiskAssessment.occurrence as dateTime) | SupplyRequest.authoredOn"
	clinicalCode    = "AllergyIntolerance.code | AllergyIntolerance.reaction.substance | Condition.code | (DeviceRequest.code as CodeableConcept) | DiagnosticReport.code | FamilyMemberHistory.condition.code | List.code | Medication.code | (MedicationAdministration.medication as CodeableConcept) | (MedicationDispense.medication as CodeableConcept) | (MedicationRequest.medication as CodeableConcept) | (MedicationStatement.medication as CodeableConcept) | Observation.code | Procedure.code | ServiceRequest.code"
)

var benchCases = []struct {
	name, expr, input string
}{
	{"Patient.name", "Patient.name", "patient"},
	{"Patient.identifier", "Patient.identifier", "patient"},
	{"individual-family", "Patient.name.family | Practitioner.name.family", "patient"},
	{"Patient-deceased", "Patient.deceased.exists() and Patient.deceased != false", "patient"},
	{"us-core-race", "Patient.extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-race').extension.where(url = 'ombCategory').value", "patient"},
	{"clinical-patient", clinicalPatient, "observation"},
	{"clinical-date", clinicalDate, "observation"},
	{"clinical-code", clinicalCode, "observation"},
	{"component-value-quantity", "(Observation.component.value as Quantity) | (Observation.component.value as SampledData)", "observation"},
	{"vital-signs", "Observation.category.coding.where(system = 'http://terminology.hl7.org/CodeSystem/observation-category' and code = 'vital-signs').exists()", "observation"},
}

func BenchmarkEvaluate(b *testing.B) {
	inputs := map[string]any{
		"patient":     readJSON(b, "testdata/synthea-patient.json"),
		"observation": readJSON(b, "testdata/synthea-observation.json"),
	}
	for _, bc := range benchCases {
		e := MustCompile(bc.expr)
		in := inputs[bc.input]
		if out, err := e.Evaluate(in); err != nil || len(out) == 0 {
			b.Fatalf("%s: %v %v", bc.name, out, err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Evaluate(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	for _, src := range []string{"Patient.name", clinicalPatient} {
		b.Run(src[:min(len(src), 20)], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
