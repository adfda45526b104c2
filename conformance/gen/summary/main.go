// Command summary writes conformance/summary.json, the _summary and _elements
// data of the FHIR R4 resource types, from the R4 StructureDefinitions.
//
// It reads either an unpacked hl7.fhir.r4.core package (-dir, the
// package/StructureDefinition-*.json files) or a FHIR Bundle of
// StructureDefinitions such as profiles-resources.json (-bundle), keeps the
// concrete resource types (kind resource, derivation specialization, not
// abstract, the FHIR version given by -fhir-version) and writes, per type:
//
//	summary    element paths relative to the resource whose isSummary is true,
//	           choice elements expanded to their JSON names ("valueQuantity")
//	mandatory  top-level JSON names with min >= 1
//	backbone   paths of the BackboneElements (elements with children)
//	refs       contentReference elements and the path whose children they reuse
//	choice     top-level choice elements and their JSON names
//
// A resource's own elements are taken from its differential, which in the core
// package defines every element of the resource; inherited ones (id, meta,
// text, extension, modifierExtension…) from its snapshot. On the official
// package that is exactly the snapshot. Repackaged bundles that grafted later
// elements onto the R4 snapshots are brought back to R4 this way; each
// snapshot element dropped or differential element restored is reported on
// standard error.
//
// Usage (from the module root):
//
//	go run ./conformance/gen/summary -bundle DIR/profiles-resources.json -out conformance/summary.json
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

func main() {
	dir := flag.String("dir", "", "directory of an unpacked hl7.fhir.r4.core package (holds StructureDefinition-*.json)")
	bundle := flag.String("bundle", "", "FHIR Bundle of StructureDefinitions (e.g. profiles-resources.json)")
	version := flag.String("fhir-version", "4.0.1", "keep only StructureDefinitions of this fhirVersion")
	out := flag.String("out", "conformance/summary.json", "file to write")
	flag.Parse()
	if err := run(*dir, *bundle, *version, *out, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
}

func run(dir, bundle, version, out string, log io.Writer) error {
	var sds []structureDefinition
	var err error
	switch {
	case (dir == "") == (bundle == ""):
		return errors.New("give exactly one of -dir and -bundle")
	case dir != "":
		sds, err = readDir(dir)
	default:
		sds, err = readBundle(bundle)
	}
	if err != nil {
		return err
	}
	defs := make(map[string]resourceDef)
	for _, sd := range sds {
		if sd.ResourceType != "StructureDefinition" || sd.Kind != "resource" ||
			sd.Derivation != "specialization" || sd.Abstract || sd.FHIRVersion != version {
			continue
		}
		if _, dup := defs[sd.Type]; dup {
			return fmt.Errorf("resource type %s defined twice", sd.Type)
		}
		defs[sd.Type] = build(sd, log)
	}
	if len(defs) == 0 {
		return fmt.Errorf("no resource StructureDefinition with fhirVersion %s", version)
	}
	data, err := encode(defs)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %d resource types, %d bytes, to %s\n", len(defs), len(data), out)
	return nil
}

type structureDefinition struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Kind         string `json:"kind"`
	Derivation   string `json:"derivation"`
	Abstract     bool   `json:"abstract"`
	FHIRVersion  string `json:"fhirVersion"`
	Snapshot     struct {
		Element []element `json:"element"`
	} `json:"snapshot"`
	Differential struct {
		Element []element `json:"element"`
	} `json:"differential"`
}

type element struct {
	Path             string `json:"path"`
	Min              int    `json:"min"`
	IsSummary        bool   `json:"isSummary"`
	ContentReference string `json:"contentReference"`
	Base             struct {
		Path string `json:"path"`
	} `json:"base"`
	Type []struct {
		Code string `json:"code"`
	} `json:"type"`
}

// resourceDef is one resource type in summary.json; it mirrors the type the
// conformance package decodes.
type resourceDef struct {
	Summary   []string            `json:"summary"`
	Mandatory []string            `json:"mandatory,omitempty"`
	Backbone  []string            `json:"backbone,omitempty"`
	Refs      map[string]string   `json:"refs,omitempty"`
	Choice    map[string][]string `json:"choice,omitempty"`
}

func readDir(dir string) ([]structureDefinition, error) {
	files, err := filepath.Glob(filepath.Join(dir, "StructureDefinition-*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no StructureDefinition-*.json in %s", dir)
	}
	sds := make([]structureDefinition, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var sd structureDefinition
		if err := json.Unmarshal(data, &sd); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		sds = append(sds, sd)
	}
	return sds, nil
}

func readBundle(file string) ([]structureDefinition, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var b struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	sds := make([]structureDefinition, 0, len(b.Entry))
	for i, e := range b.Entry {
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(e.Resource, &head); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", file, i, err)
		}
		if head.ResourceType != "StructureDefinition" {
			continue // OperationDefinitions and the like share the bundle
		}
		var sd structureDefinition
		if err := json.Unmarshal(e.Resource, &sd); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", file, i, err)
		}
		sds = append(sds, sd)
	}
	return sds, nil
}

// elements returns the resource's elements (root excluded): its own from the
// differential, the inherited ones from the snapshot.
func elements(sd structureDefinition, log io.Writer) []element {
	root := sd.Type
	own := make(map[string]bool)
	var els []element
	for _, e := range sd.Differential.Element {
		if e.Path != root {
			own[e.Path] = true
			els = append(els, e)
		}
	}
	inSnapshot := make(map[string]bool)
	for _, e := range sd.Snapshot.Element {
		inSnapshot[e.Path] = true
		if e.Path == root || own[e.Path] {
			continue
		}
		if head, _, _ := strings.Cut(e.Base.Path, "."); head == root {
			fmt.Fprintf(log, "dropped %s: in the snapshot, not in the differential\n", e.Path)
			continue
		}
		if parent := parentPath(e.Path); parent == root || own[parent] {
			els = append(els, e)
		}
	}
	for _, e := range els {
		if !inSnapshot[e.Path] {
			fmt.Fprintf(log, "restored %s: in the differential, not in the snapshot\n", e.Path)
		}
	}
	return els
}

func build(sd structureDefinition, log io.Writer) resourceDef {
	root := sd.Type
	els := elements(sd, log)
	parents := make(map[string]bool)
	for _, e := range els {
		parents[parentPath(e.Path)] = true
	}
	def := resourceDef{Refs: map[string]string{}, Choice: map[string][]string{}}
	for _, e := range els {
		rel := strings.TrimPrefix(e.Path, root+".")
		names := jsonPaths(rel, e)
		topLevel := !strings.Contains(rel, ".")
		if e.IsSummary {
			def.Summary = append(def.Summary, names...)
		}
		if topLevel && e.Min >= 1 {
			def.Mandatory = append(def.Mandatory, names...)
		}
		if parents[e.Path] {
			def.Backbone = append(def.Backbone, rel)
		}
		if ref, ok := strings.CutPrefix(e.ContentReference, "#"+root+"."); ok {
			def.Refs[rel] = ref
		}
		if base, ok := strings.CutSuffix(rel, "[x]"); ok && topLevel {
			def.Choice[base] = names
		}
	}
	for _, s := range [][]string{def.Summary, def.Mandatory, def.Backbone} {
		sort.Strings(s)
	}
	def.Summary = slices.Compact(def.Summary)
	def.Mandatory = slices.Compact(def.Mandatory)
	return def
}

// jsonPaths turns a relative element path into the paths of its JSON
// properties: "component.value[x]" with types Quantity and string becomes
// "component.valueQuantity" and "component.valueString".
func jsonPaths(rel string, e element) []string {
	base, ok := strings.CutSuffix(rel, "[x]")
	if !ok {
		return []string{rel}
	}
	paths := make([]string, 0, len(e.Type))
	for _, t := range e.Type {
		r, n := utf8.DecodeRuneInString(t.Code)
		paths = append(paths, base+string(unicode.ToUpper(r))+t.Code[n:])
	}
	sort.Strings(paths)
	return paths
}

func parentPath(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// encode writes one resource type a line, keys sorted, so that a regeneration
// diffs by resource.
func encode(defs map[string]resourceDef) ([]byte, error) {
	types := make([]string, 0, len(defs))
	for t := range defs {
		types = append(types, t)
	}
	sort.Strings(types)
	var buf bytes.Buffer
	buf.WriteString("{\n")
	for i, t := range types {
		line, err := json.Marshal(defs[t])
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&buf, "%q:%s", t, line)
		if i < len(types)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("}\n")
	return buf.Bytes(), nil
}
