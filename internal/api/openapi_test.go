package api

import (
	"fmt"
	"mamori/internal/compliance"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"mamori/internal/compliance/posture"
	"mamori/internal/model"
)

// wireSchemas pairs every named schema of docs/openapi.yaml with the Go
// type that reads or writes it. TestSchemasMatchTypes checks each pair both
// ways (every JSON field of the type is a documented property, every
// documented property a field), and that the document names no schema
// outside this table.
var wireSchemas = map[string]any{
	"Error":                Error{},
	"Health":               Health{},
	"Whoami":               Whoami{},
	"SeverityCounts":       SeverityCounts{},
	"FindingCounts":        FindingCounts{},
	"ImageSummary":         ImageSummary{},
	"ImagePage":            ImagePage{},
	"ImageDetail":          ImageDetail{},
	"ImageVulnerabilities": ImageVulnerabilities{},
	"ImageFindings":        ImageFindings{},
	"ScanRecord":           ScanRecord{},
	"ScanPage":             ScanPage{},
	"IngestOutcome":        IngestOutcome{},
	"VulnerabilitySummary": VulnerabilitySummary{},
	"VulnerabilityPage":    VulnerabilityPage{},
	"VulnerabilityDetail":  VulnerabilityDetail{},
	"AffectedPackage":      AffectedPackage{},
	"AffectedWorkload":     AffectedWorkload{},
	"HostContainer":        HostContainer{},
	"NodeContainersReport": NodeContainersReport{},
	"NodeContainer":        NodeContainer{},
	"NodeContainersResult": NodeContainersResult{},
	"TagFilter":            TagFilter{},
	"RegistryRequest":      RegistryRequest{},
	"RegistrySync":         RegistrySync{},
	"Registry":             Registry{},
	"RegistryList":         RegistryList{},
	"Started":              Started{},
	"Token":                Token{},
	"TokenList":            TokenList{},
	"TokenRequest":         TokenRequest{},
	"TokenCreated":         TokenCreated{},
	"DBInfo":               DBInfo{},
	"RematchStatus":        RematchStatus{},

	"EventBatch":        EventBatch{},
	"EventIngestResult": EventIngestResult{},
	"EventRejection":    EventRejection{},
	"EventRecord":       EventRecord{},
	"EventPage":         EventPage{},
	"ClusterRequest":    ClusterRequest{},
	"Cluster":           Cluster{},
	"ClusterCreated":    ClusterCreated{},
	"ClusterList":       ClusterList{},
	"ClusterReport":     ClusterReport{},
	"AgentReport":       AgentReport{},
	"Agent":             Agent{},
	"AgentSensor":       AgentSensor{},
	"RuntimeRulesetRef": RuntimeRulesetRef{},
	"AgentList":         AgentList{},
	"ComponentConfig":   ComponentConfig{},
	"MatchRequest":      MatchRequest{},
	"MatchResult":       MatchResult{},

	"ClusterPolicyRequest": ClusterPolicyRequest{},
	"ComponentPolicy":      ComponentPolicy{},
	"PolicyApply":          PolicyApply{},
	"PolicyApplied":        PolicyApplied{},
	"Policy":               Policy{},
	"PolicyRule":           PolicyRule{},
	"PolicyException":      PolicyException{},
	"PolicyRuleset":        PolicyRuleset{},
	"PolicySummary":        PolicySummary{},
	"PolicyList":           PolicyList{},
	"ComplianceReport":     compliance.Report{},
	"ComplianceSummary":    ComplianceSummary{},
	"ComplianceSnapshot":   ComplianceSnapshot{},
	"ComplianceHistory":    ComplianceHistory{},
	"ComplianceAssessed":   ComplianceAssessed{},
	"PostureResult":        PostureResult{},
	"NodePosture":          posture.Node{},
	"ClusterPosture":       posture.Cluster{},
	"PolicyVersion":        PolicyVersion{},
	"PolicyVersionList":    PolicyVersionList{},

	"RuntimeRule":        RuntimeRule{},
	"RuntimeRuleList":    RuntimeRuleList{},
	"ResolvedRuleset":    ResolvedRuleset{},
	"PolicyRuntime":      PolicyRuntime{},
	"RuntimeRulesetList": RuntimeRulesetList{},
	"HostGroupRuntime":   HostGroupRuntime{},
	"HostGroupPolicy":    HostGroupPolicy{},
	"AttackTechnique":    AttackTechnique{},
	"AttackTactic":       AttackTactic{},
	"AttackMatrix":       AttackMatrix{},

	"ImageLookup":        ImageLookup{},
	"ImageLookupResult":  ImageLookupResult{},
	"ImageScanData":      ImageScanData{},
	"ClusterScanOutcome": ClusterScanOutcome{},
	"InventoryBatch":     InventoryBatch{},
	"InventoryRef":       InventoryRef{},
	"InventoryObject":    InventoryObject{},
	"InventoryContainer": InventoryContainer{},
	"InventoryResult":    InventoryResult{},
	"ClusterObjects":     ClusterObjects{},
	"LoadReport":         LoadReport{},
	"LoadContainer":      LoadContainer{},
	"Load":               Load{},
	"LoadReportResult":   LoadReportResult{},
	"MitigationRequest":  MitigationRequest{},
	"Mitigation":         Mitigation{},
	"MitigationList":     MitigationList{},
	"MitigationOutcome":  MitigationOutcome{},
	// Host protection (hosts.go).
	"HostSettings":          HostSettings{},
	"AntimalwareSettings":   AntimalwareSettings{},
	"AntimalwareOnAccess":   AntimalwareOnAccess{},
	"AntimalwareEngines":    AntimalwareEngines{},
	"AntimalwareExclusions": AntimalwareExclusions{},
	"AntimalwareSchedule":   AntimalwareSchedule{},
	"IntegritySettings":     IntegritySettings{},
	"IntegrityRule":         IntegrityRule{},
	"LogInspectSettings":    LogInspectSettings{},
	"LogSource":             LogSource{},
	"LogForward":            LogForward{},
	"AppControlSettings":    AppControlSettings{},
	"FirewallSettings":      FirewallSettings{},
	"FirewallRuleset":       FirewallRuleset{},
	"FirewallRule":          FirewallRule{},
	"HostGroupRequest":      HostGroupRequest{},
	"HostGroup":             HostGroup{},
	"HostMember":            HostMember{},
	"HostGroupList":         HostGroupList{},
	"HostPlacement":         HostPlacement{},
	"HostConfig":            HostConfig{},
	"AllowList":             AllowList{},
	"AllowListDocument":     AllowListDocument{},
	"AllowListEntry":        AllowListEntry{},
	"AllowListAdd":          AllowListAdd{},
	"AllowListChange":       AllowListChange{},
	"HostRequestCreate":     HostRequestCreate{},
	"HostRequest":           HostRequest{},
	"HostRequestList":       HostRequestList{},
	"HostRequestResult":     HostRequestResult{},
	"QuarantineEntry":       QuarantineEntry{},
	"QuarantineHit":         QuarantineHit{},
	"QuarantineReport":      QuarantineReport{},
	"QuarantineRecord":      QuarantineRecord{},
	"QuarantineList":        QuarantineList{},
	"BaselineReport":        BaselineReport{},
	"BaselineRule":          BaselineRule{},
	"BaselineRecord":        BaselineRecord{},
	"BaselineList":          BaselineList{},

	// The model's types, which the API carries as they are.
	"Event":          model.Event{},
	"ScanResult":     model.Result{},
	"Vulnerability":  model.Vulnerability{},
	"PackageRef":     model.PackageRef{},
	"CVSS":           model.CVSS{},
	"KEV":            model.KEV{},
	"EPSS":           model.EPSS{},
	"InUse":          model.InUse{},
	"InUseContainer": model.InUseContainer{},
	"Priority":       model.Priority{},
	"Finding":        model.Finding{},
	"Package":        model.Package{},
}

// openAPIDoc is the part of the document the tests read.
type openAPIDoc struct {
	OpenAPI    string         `yaml:"openapi"`
	Paths      map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]map[string]any `yaml:"schemas"`
	} `yaml:"components"`
}

func readOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

// schemaProps returns the property names of a schema, following $ref to
// named schemas and merging allOf parts.
func schemaProps(t *testing.T, doc openAPIDoc, sch map[string]any, depth int) []string {
	t.Helper()
	if depth > 10 {
		t.Fatal("schema $ref loop")
	}
	var out []string
	if ref, ok := sch["$ref"].(string); ok {
		name, found := strings.CutPrefix(ref, "#/components/schemas/")
		target, ok := doc.Components.Schemas[name]
		if !found || !ok {
			t.Fatalf("unresolvable $ref %q", ref)
		}
		out = append(out, schemaProps(t, doc, target, depth+1)...)
	}
	if all, ok := sch["allOf"].([]any); ok {
		for _, part := range all {
			m, ok := part.(map[string]any)
			if !ok {
				t.Fatalf("allOf part %v is not an object", part)
			}
			out = append(out, schemaProps(t, doc, m, depth+1)...)
		}
	}
	if props, ok := sch["properties"].(map[string]any); ok {
		for p := range props {
			out = append(out, p)
		}
	}
	return out
}

// jsonFields returns the JSON names of a struct type's fields, embedded
// structs without a name flattened as encoding/json does.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

func TestSchemasMatchTypes(t *testing.T) {
	doc := readOpenAPI(t)
	for name, v := range wireSchemas {
		sch, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s (%T) is not in docs/openapi.yaml", name, v)
			continue
		}
		documented := schemaProps(t, doc, sch, 0)
		fields := jsonFields(reflect.TypeOf(v))
		sort.Strings(documented)
		sort.Strings(fields)
		for _, f := range fields {
			if !slices.Contains(documented, f) {
				t.Errorf("%s: %T has field %q that docs/openapi.yaml does not document", name, v, f)
			}
		}
		for _, p := range documented {
			if !slices.Contains(fields, p) {
				t.Errorf("%s: docs/openapi.yaml documents %q, which %T does not have", name, p, v)
			}
		}
	}
	var extra []string
	for name, sch := range doc.Components.Schemas {
		if _, ok := wireSchemas[name]; ok {
			continue
		}
		// Enumerations (no properties) need no Go type here.
		if _, hasProps := sch["properties"]; hasProps || sch["allOf"] != nil {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("docs/openapi.yaml has object schemas no Go type is checked against (add them to wireSchemas): %v", extra)
	}
}

// TestRouteSchemasAreNamed: every request and response body of a route is
// a named schema ($ref), so that TestSchemasMatchTypes covers every wire
// shape; an inline object schema would escape the check.
func TestRouteSchemasAreNamed(t *testing.T) {
	doc := readOpenAPI(t)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if sch, ok := x["schema"].(map[string]any); ok {
				if _, inline := sch["properties"]; inline || sch["allOf"] != nil {
					t.Errorf("%s: inline object schema; name it in components.schemas", path)
				}
			}
			for k, c := range x {
				walk(path+"/"+k, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("paths", doc.Paths)
}
