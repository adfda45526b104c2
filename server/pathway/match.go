package pathway

import "strings"

// matches reports whether fact f meets the criteria; index is the index
// fact (nil for asOf rules), used by SameCodeAsIndex.
func (c *Criteria) matches(f *Fact, index *Fact) bool {
	if !containsStr(c.ResourceTypes, f.Type) {
		return false
	}
	if len(c.Codes) > 0 && !anyCode(c.Codes, f.Codes) {
		return false
	}
	if len(c.ExcludeCodes) > 0 && anyCode(c.ExcludeCodes, f.Codes) {
		return false
	}
	if len(c.Class) > 0 && !containsFold(c.Class, f.Class) {
		return false
	}
	if len(c.ServiceType) > 0 && !anyCode(c.ServiceType, f.ServiceType) {
		return false
	}
	if len(c.DiagnosisRole) > 0 && !containsFold(c.DiagnosisRole, f.DiagnosisRole) {
		return false
	}
	if c.Diagnosis != nil && !c.Diagnosis.matches(f.Diagnoses) {
		return false
	}
	if len(c.AdmitSource) > 0 && !anyCode(c.AdmitSource, f.AdmitSource) {
		return false
	}
	if len(c.DischargeDisposition) > 0 && !anyCode(c.DischargeDisposition, f.Discharge) {
		return false
	}
	if len(c.ExcludeDischargeDisposition) > 0 && anyCode(c.ExcludeDischargeDisposition, f.Discharge) {
		return false
	}
	if len(c.PerformerSpecialty) > 0 && !anyCode(c.PerformerSpecialty, f.Specialties) {
		return false
	}
	if len(c.Interpretation) > 0 && !anyCode(c.Interpretation, f.Interpretation) {
		return false
	}
	if len(c.Stage) > 0 && !stageIn(c.Stage, f) {
		return false
	}
	if len(c.Status) > 0 && !containsStr(c.Status, f.Status) {
		return false
	}
	if len(c.SourceActor) > 0 && !containsStr(c.SourceActor, f.SourceActor) {
		return false
	}
	if c.SameCodeAsIndex != nil && (index == nil || !c.SameCodeAsIndex.matches(f, index)) {
		return false
	}
	return true
}

func (d *DiagnosisCriteria) matches(ds []Diagnosis) bool {
	for _, dg := range ds {
		if len(d.Role) > 0 && !containsFold(d.Role, dg.Role) {
			continue
		}
		if len(d.Codes) > 0 && !anyCode(d.Codes, dg.Codes) {
			continue
		}
		return true
	}
	return false
}

func (s *SameCode) matches(f, index *Fact) bool {
	for _, a := range f.Codes {
		if s.System != "" && a.System != s.System {
			continue
		}
		for _, b := range index.Codes {
			if a.System != b.System {
				continue
			}
			if s.PrefixLength == 0 {
				if codeEqual(a.Code, b.Code) {
					return true
				}
				continue
			}
			na, nb := normCode(a.Code), normCode(b.Code)
			if len(na) >= s.PrefixLength && len(nb) >= s.PrefixLength && na[:s.PrefixLength] == nb[:s.PrefixLength] {
				return true
			}
		}
	}
	return false
}

func stageIn(stages []string, f *Fact) bool {
	for _, s := range stages {
		if s != "" && (s == f.Stage || s == f.StageTop) {
			return true
		}
	}
	return false
}

// anyCode reports whether any coding is in any of the code sets.
func anyCode(sets []CodeSet, codes []Coding) bool {
	for i := range codes {
		for j := range sets {
			if sets[j].contains(codes[i]) {
				return true
			}
		}
	}
	return false
}

func (s *CodeSet) contains(c Coding) bool {
	if c.System != s.System {
		return false
	}
	for _, x := range s.Codes {
		if codeEqual(c.Code, x) {
			return true
		}
	}
	for _, x := range s.Prefixes {
		if codePrefix(c.Code, x) {
			return true
		}
	}
	return false
}

// codeEqual compares two codes ignoring ASCII case and dots.
func codeEqual(a, b string) bool {
	i, j := 0, 0
	for {
		for i < len(a) && a[i] == '.' {
			i++
		}
		for j < len(b) && b[j] == '.' {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if lower(a[i]) != lower(b[j]) {
			return false
		}
		i++
		j++
	}
}

// codePrefix reports whether code starts with prefix, ignoring ASCII case
// and dots.
func codePrefix(code, prefix string) bool {
	i, j := 0, 0
	for {
		for i < len(code) && code[i] == '.' {
			i++
		}
		for j < len(prefix) && prefix[j] == '.' {
			j++
		}
		if j == len(prefix) {
			return true
		}
		if i == len(code) || lower(code[i]) != lower(prefix[j]) {
			return false
		}
		i++
		j++
	}
}

// normCode is a code without dots, in lower case.
func normCode(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ".", ""))
}

func lower(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func containsFold(l []string, s string) bool {
	if s == "" {
		return false
	}
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
