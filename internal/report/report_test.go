package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"mamori/internal/model"
)

func sample() *model.Result {
	return &model.Result{
		SchemaVersion: model.SchemaVersion,
		Tool:          model.Tool{Name: "mamori", Version: "test"},
		ScanID:        "0123456789abcdef0123456789abcdef",
		CreatedAt:     time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC),
		Target:        model.Target{Name: "example.com/app:1.0", Type: model.TargetImage, Digest: "sha256:" + strings.Repeat("a", 64)},
		Scanners:      []string{"vuln", "secret"},
		Inventory: model.Inventory{
			OS: &model.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
			Packages: []model.Package{
				{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Type: "deb", Ecosystem: "Debian", PURL: "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12",
					SourceName: "zlib", Cataloger: "dpkg", Licenses: []string{"Zlib"}, Locations: []model.PackageLocation{{Path: "var/lib/dpkg/status", LayerDiffID: "sha256:11"}}},
				{Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", Type: "maven", Ecosystem: "Maven", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
					Cataloger: "java", Locations: []model.PackageLocation{{Path: "app/app.jar", LayerDiffID: "sha256:22"}}},
				{Name: "weird\x1b[31mname", Version: "1", Type: "npm", PURL: "pkg:npm/weird@1", Cataloger: "npm", Locations: []model.PackageLocation{{Path: "node_modules/weird/package.json"}}},
			},
		},
		Vulnerabilities: []model.Vulnerability{{
			ID: "GHSA-jfh8-c2jp-5v3q", Aliases: []string{"CVE-2021-44228"},
			Package:      model.PackageRef{Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", Type: "maven", Ecosystem: "Maven", Path: "app/app.jar"},
			FixedVersion: "2.15.0", Severity: model.SeverityCritical,
			CVSS:    []model.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", Score: 10}},
			Summary: "Remote code injection in Log4j", DataSource: "Maven", References: []string{"https://logging.apache.org/log4j/2.x/security.html"},
		}},
		Findings: []model.Finding{{Kind: model.KindSecret, ID: "aws-access-key-id", Title: "AWS access key ID", Severity: model.SeverityCritical,
			Location: model.Location{Path: "root/.aws/credentials", StartLine: 2}, Evidence: "AKIA****(20 chars)"}},
		Warnings: []string{sampleWarning},
	}
}

// sampleWarning is a skipped-records warning as the dpkg cataloger makes it.
const sampleWarning = "var/lib/dpkg/status: dpkg: skipped 2 paragraphs without Package or Version"

// TestWarningsInEveryFormat: a scan's warnings (skipped package records, a
// file over the cap ...) reach the reader whatever the output format.
func TestWarningsInEveryFormat(t *testing.T) {
	for _, f := range []Format{FormatTable, FormatJSON, FormatCycloneDX, FormatSPDXJSON, FormatSARIF, FormatJUnit} {
		var buf bytes.Buffer
		if err := Write(&buf, f, []*model.Result{sample()}, Options{}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !strings.Contains(buf.String(), sampleWarning) {
			t.Errorf("%s output lacks the warning:\n%s", f, buf.String())
		}
	}
}

// moduleDir finds a module's source in the module cache, where the go
// command put it to build this test.
func moduleDir(t *testing.T, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Skipf("module %s not in the module cache: %v", mod, err)
	}
	return strings.TrimSpace(string(out))
}

func TestCycloneDXValidatesAgainstSchema(t *testing.T) {
	// The CycloneDX 1.6 schema ships in cyclonedx-go's module (Apache-2.0).
	dir := filepath.Join(moduleDir(t, "github.com/CycloneDX/cyclonedx-go"), "schema")
	c := jsonschema.NewCompiler()
	for _, f := range []string{"spdx.schema.json", "jsf-0.82.schema.json"} {
		loadSchema(t, c, filepath.Join(dir, f), "http://cyclonedx.org/schema/"+f)
	}
	loadSchema(t, c, filepath.Join(dir, "bom-1.6.schema.json"), "http://cyclonedx.org/schema/bom-1.6.schema.json")
	sch, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	// With the prioritisation properties and an alias record's rating source too.
	if err := Write(&buf, FormatCycloneDX, []*model.Result{prioSample()}, Options{}); err != nil {
		t.Fatal(err)
	}
	if doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	} else if err := sch.Validate(doc); err != nil {
		t.Fatalf("CycloneDX output with prioritisation does not validate: %v\n%s", err, buf.String())
	}
	buf.Reset()
	if err := Write(&buf, FormatCycloneDX, []*model.Result{sample()}, Options{}); err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("CycloneDX output does not validate: %v\n%s", err, buf.String())
	}
	for _, want := range []string{`"specVersion": "1.6"`, "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "CVE-2021-44228", `"method": "CVSSv31"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("CycloneDX output lacks %s", want)
		}
	}
}

func loadSchema(t *testing.T, c *jsonschema.Compiler, path, url string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) && strings.Contains(path, "jsf") {
			f, err = os.Open(strings.Replace(path, "jsf-0.82.schema.json", "jsf-0.82.schemax.json", 1))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
}

func TestSPDXIsValid(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, FormatSPDXJSON, []*model.Result{sample()}, Options{}); err != nil {
		t.Fatal(err)
	}
	// Read it back with the SPDX project's own library and validate it.
	doc, err := spdxjson.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatalf("invalid SPDX: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || len(doc.Packages) != 5 {
		t.Errorf("version %s, %d packages", doc.SPDXVersion, len(doc.Packages))
	}
	// The SPDX 2.3 JSON schema's required fields, checked on the raw JSON.
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"SPDXID", "spdxVersion", "dataLicense", "name", "documentNamespace", "creationInfo"} {
		if raw[k] == nil {
			t.Errorf("missing %s", k)
		}
	}
	for _, p := range raw["packages"].([]any) {
		pm := p.(map[string]any)
		for _, k := range []string{"SPDXID", "name", "downloadLocation"} {
			if pm[k] == nil {
				t.Errorf("package lacks %s: %v", k, pm)
			}
		}
	}
}

func TestSARIF(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, FormatSARIF, []*model.Result{sample()}, Options{}); err != nil {
		t.Fatal(err)
	}
	var log sarifLog
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != 2 || len(log.Runs[0].Tool.Driver.Rules) != 2 {
		t.Fatalf("unexpected SARIF: %s", buf.String())
	}
	r := log.Runs[0].Results[0]
	if r.Level != "error" || r.Locations[0].Physical.Region.StartLine < 1 || log.Runs[0].Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
		t.Errorf("result %+v", r)
	}
	if s := log.Runs[0].Tool.Driver.Rules[0].Properties["security-severity"]; s != "10.0" {
		t.Errorf("security-severity = %v", s)
	}
}

func TestJUnit(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, FormatJUnit, []*model.Result{sample()}, Options{}); err != nil {
		t.Fatal(err)
	}
	var s junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Suites) != 2 || s.Suites[0].Failures != 1 || s.Suites[1].Failures != 1 {
		t.Errorf("suites %+v", s.Suites)
	}
}

func TestTableEscapesControlCharacters(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, FormatTable, []*model.Result{sample()}, Options{SBOM: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "\x1b") {
		t.Error("table output holds an escape character from scanned content")
	}
	buf.Reset()
	if err := Write(&buf, FormatTable, []*model.Result{sample()}, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GHSA-jfh8-c2jp-5v3q (CVE-2021-44228)", "CRITICAL", "2.15.0", "AKIA****(20 chars)", "root/.aws/credentials:2"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, FormatJSON, []*model.Result{sample()}, Options{}); err != nil {
		t.Fatal(err)
	}
	var back model.Result
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Vulnerabilities[0].Severity != model.SeverityCritical || back.Inventory.Packages[0].Name != "zlib1g" {
		t.Errorf("round trip lost data: %+v", back)
	}
}

func TestParseFormat(t *testing.T) {
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("unknown format: err = %v, want one naming it", err)
	}
	if f, err := ParseFormat("SARIF"); err != nil || f != FormatSARIF {
		t.Error(f, err)
	}
}
