package server

import (
	"strconv"

	"github.com/parcours-sante/parcours/server/audit"
)

// appendJSON appends the JSON of the input, byte for byte what
// json.Marshal(in) writes (field order, omitempty, nil lists as null,
// HTML escaping), without reflection: the input of every audit record is
// encoded so. TestInputJSON compares the two over random inputs and fails
// when a field is added that appendJSON does not write.
func (in *policyInput) appendJSON(b []byte) []byte {
	b = append(b, `{"now":`...)
	b = audit.AppendString(b, in.Now)
	s := &in.Subject
	b = append(b, `,"subject":{"sub":`...)
	b = audit.AppendString(b, s.Sub)
	b = append(b, `,"actor_type":`...)
	b = audit.AppendString(b, s.ActorType)
	if s.Org != "" {
		b = append(b, `,"org":`...)
		b = audit.AppendString(b, s.Org)
	}
	if s.RPPS != "" {
		b = append(b, `,"rpps":`...)
		b = audit.AppendString(b, s.RPPS)
	}
	if s.Patient != "" {
		b = append(b, `,"patient":`...)
		b = audit.AppendString(b, s.Patient)
	}
	b = append(b, `,"care_teams":`...)
	b = appendJSONStrings(b, s.CareTeams)
	b = append(b, `,"purposes":`...)
	b = appendJSONStrings(b, s.Purposes)
	b = append(b, `},"purpose":`...)
	b = audit.AppendString(b, in.Purpose)
	b = append(b, `,"break_glass":`...)
	if g := in.BreakGlass; g == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"reason":`...)
		b = audit.AppendString(b, g.Reason)
		if g.Started != "" {
			b = append(b, `,"started":`...)
			b = audit.AppendString(b, g.Started)
		}
		if g.Expires != "" {
			b = append(b, `,"expires":`...)
			b = audit.AppendString(b, g.Expires)
		}
		b = append(b, '}')
	}
	b = append(b, `,"interaction":`...)
	b = audit.AppendString(b, in.Interaction)
	if in.Operation != "" {
		b = append(b, `,"operation":`...)
		b = audit.AppendString(b, in.Operation)
	}
	b = append(b, `,"resource_type":`...)
	b = audit.AppendString(b, in.ResourceType)
	if in.IngestSource != "" {
		b = append(b, `,"ingest_source":`...)
		b = audit.AppendString(b, in.IngestSource)
	}
	b = append(b, `,"aggregate":`...)
	b = strconv.AppendBool(b, in.Aggregate)
	if len(in.MeasureTopics) > 0 {
		b = append(b, `,"measure_topics":`...)
		b = appendJSONStrings(b, in.MeasureTopics)
	}
	if in.OnePatient {
		b = append(b, `,"one_patient":true`...)
	}
	if r := in.Resource; r != nil {
		b = append(b, `,"resource":{"type":`...)
		b = audit.AppendString(b, r.Type)
		if r.ID != "" {
			b = append(b, `,"id":`...)
			b = audit.AppendString(b, r.ID)
		}
		b = append(b, `,"source_actor":`...)
		b = audit.AppendString(b, r.SourceActor)
		b = append(b, `,"source_org":`...)
		b = audit.AppendString(b, r.SourceOrg)
		b = append(b, `,"security_labels":`...)
		b = appendJSONStrings(b, r.SecurityLabels)
		b = append(b, '}')
	}
	if p := in.Patient; p != nil {
		b = p.appendJSON(append(b, `,"patient":`...))
	}
	return append(b, '}')
}

func (p *patientIn) appendJSON(b []byte) []byte {
	b = append(b, `{"pseudonym":`...)
	b = audit.AppendString(b, p.Pseudonym)
	b = append(b, `,"is_self":`...)
	b = strconv.AppendBool(b, p.IsSelf)
	b = append(b, `,"care_team":{"member":`...)
	b = strconv.AppendBool(b, p.CareTeam.Member)
	b = append(b, `,"via":`...)
	b = appendJSONStrings(b, p.CareTeam.Via)
	b = append(b, `},"consents":`...)
	if p.Consents == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range p.Consents {
		c := &p.Consents[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = audit.AppendString(b, c.ID)
		b = append(b, `,"author":`...)
		b = audit.AppendString(b, c.Author)
		b = append(b, `,"status":`...)
		b = audit.AppendString(b, c.Status)
		b = append(b, `,"scope":`...)
		b = audit.AppendString(b, c.Scope)
		b = append(b, `,"policy":`...)
		b = audit.AppendString(b, c.Policy)
		b = append(b, `,"provisions":`...)
		if c.Provisions == nil {
			b = append(b, "null}"...)
			continue
		}
		b = append(b, '[')
		for j := range c.Provisions {
			v := &c.Provisions[j]
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = audit.AppendString(b, v.Type)
			b = append(b, `,"actors":`...)
			b = appendJSONStrings(b, v.Actors)
			b = append(b, `,"purposes":`...)
			b = appendJSONStrings(b, v.Purposes)
			b = append(b, `,"classes":`...)
			b = appendJSONStrings(b, v.Classes)
			b = append(b, `,"security_labels":`...)
			b = appendJSONStrings(b, v.SecurityLabels)
			if t := v.Period; t != nil {
				b = append(b, `,"period":{`...)
				if t.Start != "" {
					b = append(b, `"start":`...)
					b = audit.AppendString(b, t.Start)
				}
				if t.End != "" {
					if t.Start != "" {
						b = append(b, ',')
					}
					b = append(b, `"end":`...)
					b = audit.AppendString(b, t.End)
				}
				b = append(b, '}')
			}
			if len(v.Unsupported) > 0 {
				b = append(b, `,"unsupported":`...)
				b = appendJSONStrings(b, v.Unsupported)
			}
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

// appendJSONStrings appends a list of strings as encoding/json does: null
// when nil.
func appendJSONStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = audit.AppendString(b, s)
	}
	return append(b, ']')
}
