package compliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mixedReport has every status: a violation, missing sources and a
// not-applicable control.
func mixedReport() *Report {
	e := goodEvidence()
	violations[0].do(e)
	e.Nodes = nil
	e.Registries[0].Private = false
	return Assess(e, Settings{}, testNow)
}

func TestRenderJSON(t *testing.T) {
	r := mixedReport()
	var b bytes.Buffer
	if err := Render(&b, r, FormatJSON, ""); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(back.Controls) != 23 || back.Controls[0].Countermeasure == "" || back.Controls[0].Reads == "" || back.Controls[0].Status != StatusFail {
		t.Fatalf("round trip lost fields: %+v", back.Controls[0])
	}
	seen := map[Status]bool{}
	for _, c := range back.Controls {
		seen[c.Status] = true
	}
	for _, s := range []Status{StatusPass, StatusFail, StatusNotAssessed, StatusNotApplicable} {
		if !seen[s] {
			t.Errorf("fixture has no %s control", s)
		}
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	if err := Render(&bytes.Buffer{}, mixedReport(), "docx", ""); !errors.Is(err, ErrFormat) {
		t.Fatalf("err %v, want ErrFormat", err)
	}
}

func TestRenderHTML(t *testing.T) {
	r := mixedReport()
	r.Controls[0].Evidence[0].Name = `<script>alert(1)</script>`
	var b bytes.Buffer
	if err := Render(&b, r, FormatHTML, "https://mamori.example"); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	if strings.Contains(h, "<script>alert") {
		t.Error("evidence not escaped")
	}
	for _, c := range r.Controls {
		if !strings.Contains(h, `id="c-`+c.ID+`"`) || !strings.Contains(h, `class="`+string(c.Status)+`">`+c.Status.Label()) {
			t.Errorf("control %s or its status missing", c.ID)
		}
	}
	if !strings.Contains(h, `href="https://mamori.example/images/sha256:aa"`) || !strings.Contains(h, "@media print") {
		t.Error("no absolute console link or no print style")
	}
}

// TestRenderPDF checks the PDF with pdftotext when poppler is installed
// (scripts/test.sh installs it): every control ID and its status.
func TestRenderPDF(t *testing.T) {
	r := mixedReport()
	var b bytes.Buffer
	if err := Render(&b, r, FormatPDF, "https://mamori.example"); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("%PDF-")) || b.Len() < 5000 {
		t.Fatalf("not a PDF (%d bytes)", b.Len())
	}
	var again bytes.Buffer
	if err := Render(&again, r, FormatPDF, "https://mamori.example"); err != nil || !bytes.Equal(b.Bytes(), again.Bytes()) {
		t.Errorf("PDF not reproducible (err %v)", err)
	}
	// MAMORI_COMPLIANCE_OUT=dir keeps the rendered report for a look.
	if d := os.Getenv("MAMORI_COMPLIANCE_OUT"); d != "" {
		if err := os.WriteFile(filepath.Join(d, "report.pdf"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext not installed (apt poppler-utils)")
	}
	dir := t.TempDir()
	pdf := filepath.Join(dir, "r.pdf")
	if err := os.WriteFile(pdf, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", pdf, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, out)
	}
	CheckPDFText(t, string(out), r)
}

// CheckPDFText asserts that the text of a report's PDF has, on the
// controls table, every control ID with its status.
func CheckPDFText(t testing.TB, text string, r *Report) {
	t.Helper()
	lines := strings.Split(text, "\n")
	for _, c := range r.Controls {
		found := false
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) > 1 && f[0] == c.ID && strings.HasSuffix(strings.TrimSpace(l), c.Status.Label()) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("PDF has no line with control %s and status %q", c.ID, c.Status.Label())
		}
	}
}
