package compliance

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"codeberg.org/go-pdf/fpdf"
)

// ErrFormat is returned (wrapped) for an unknown report format.
var ErrFormat = errors.New("compliance: unknown format")

// pdfColors are the status colors (RGB).
var pdfColor = map[Status][3]int{
	StatusPass:          {17, 99, 41},
	StatusFail:          {179, 38, 30},
	StatusNotAssessed:   {122, 92, 0},
	StatusNotApplicable: {87, 96, 106},
}

// RenderPDF writes r as a PDF made by a pure-Go library
// (codeberg.org/go-pdf/fpdf): no browser, no external process. Text uses
// the PDF core fonts (Windows-1252); characters outside it print as '?'.
func RenderPDF(w io.Writer, r *Report, base string) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreationDate(r.GeneratedAt)
	pdf.SetModificationDate(r.GeneratedAt)
	pdf.SetCatalogSort(true)
	pdf.SetTitle(r.Title+" - mamori compliance report", true)
	pdf.SetAuthor("mamori", true)
	pdf.SetMargins(15, 15, 15)
	pdf.SetAutoPageBreak(true, 15)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	t := func(s string) string {
		s = strings.NewReplacer("—", "-", "–", "-", "…", "...", "·", "-", "’", "'").Replace(s)
		return tr(s)
	}
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(100, 100, 100)
		pdf.CellFormat(0, 5, t(fmt.Sprintf("%s - %s - page %d", r.Title, r.GeneratedAt.Format("2006-01-02 15:04 UTC"), pdf.PageNo())), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	width, _ := pdf.GetPageSize()
	lm, _, rm, _ := pdf.GetMargins()
	full := width - lm - rm

	pdf.SetFont("Helvetica", "B", 16)
	pdf.MultiCell(full, 8, t(r.Title), "", "L", false)
	pdf.SetFont("Helvetica", "", 9)
	pdf.SetTextColor(87, 96, 106)
	pdf.MultiCell(full, 5, t(fmt.Sprintf("Standard %s - generated %s - schema %d", r.Standard, r.GeneratedAt.Format("2006-01-02 15:04:05 UTC"), r.SchemaVersion)), "", "L", false)
	pdf.SetTextColor(0, 0, 0)
	pdf.Ln(3)

	// Summary per group.
	heading := func(s string) {
		pdf.SetFont("Helvetica", "B", 12)
		pdf.CellFormat(full, 7, t(s), "B", 1, "L", false, 0, "")
		pdf.Ln(1)
	}
	heading("Summary")
	cols := []float64{50, 22, 22, 30, 30, 26}
	row := func(bold bool, cells ...string) {
		style := ""
		if bold {
			style = "B"
		}
		pdf.SetFont("Helvetica", style, 9)
		for i, c := range cells {
			pdf.CellFormat(cols[i], 6, t(c), "1", 0, "L", bold, 0, "")
		}
		pdf.Ln(-1)
	}
	pdf.SetFillColor(242, 244, 247)
	row(true, "Group", "Pass", "Fail", "Not applicable", "Not assessed", "Score")
	for _, g := range append(append([]Summary{}, r.Groups...), func() Summary { s := r.Summary; s.Group = "all"; return s }()) {
		row(g.Group == "all", g.Group, fmt.Sprint(g.Pass), fmt.Sprint(g.Fail), fmt.Sprint(g.NotApplicable), fmt.Sprint(g.NotAssessed), scoreText(g))
	}
	pdf.Ln(4)

	// One line per control.
	heading("Controls")
	seeds := len(r.Controls) > 0 && r.Controls[0].Seed != ""
	cw := []float64{24, 12, 0, 28}
	if !seeds {
		cw[1] = 0
	}
	cw[2] = full - cw[0] - cw[1] - cw[3]
	pdf.SetFont("Helvetica", "B", 9)
	pdf.CellFormat(cw[0], 6, "ID", "1", 0, "L", true, 0, "")
	if seeds {
		pdf.CellFormat(cw[1], 6, "Risk", "1", 0, "L", true, 0, "")
	}
	pdf.CellFormat(cw[2], 6, "Title", "1", 0, "L", true, 0, "")
	pdf.CellFormat(cw[3], 6, "Status", "1", 1, "L", true, 0, "")
	for _, c := range r.Controls {
		pdf.SetFont("Helvetica", "", 9)
		pdf.CellFormat(cw[0], 6, t(c.ID), "1", 0, "L", false, 0, "")
		if seeds {
			pdf.CellFormat(cw[1], 6, t(c.Seed), "1", 0, "L", false, 0, "")
		}
		title := c.Title
		for pdf.GetStringWidth(t(title)) > cw[2]-2 && len(title) > 4 {
			title = title[:len(title)-4] + "..."
		}
		pdf.CellFormat(cw[2], 6, t(title), "1", 0, "L", false, 0, "")
		col := pdfColor[c.Status]
		pdf.SetTextColor(col[0], col[1], col[2])
		pdf.SetFont("Helvetica", "B", 9)
		pdf.CellFormat(cw[3], 6, t(c.Status.Label()), "1", 1, "L", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	}

	// Each control in full.
	for _, c := range r.Controls {
		pdf.Ln(4)
		if _, y := pdf.GetXY(); y > 240 {
			pdf.AddPage()
		}
		col := pdfColor[c.Status]
		pdf.SetFont("Helvetica", "B", 11)
		head := c.ID
		if c.Seed != "" {
			head += " (risk " + c.Seed + ")"
		}
		pdf.MultiCell(full, 6, t(head+" "+c.Title), "B", "L", false)
		pdf.SetFont("Helvetica", "B", 10)
		pdf.SetTextColor(col[0], col[1], col[2])
		pdf.MultiCell(full, 5, t("Status: "+c.Status.Label()), "", "L", false)
		pdf.SetTextColor(0, 0, 0)
		para := func(label, text string) {
			if text == "" {
				return
			}
			pdf.SetFont("Helvetica", "B", 9)
			pdf.Write(4.5, t(label+": "))
			pdf.SetFont("Helvetica", "", 9)
			pdf.Write(4.5, t(text))
			pdf.Ln(5)
		}
		para("Reason", c.Reason)
		para("Countermeasure", c.Countermeasure)
		para("mamori feature", c.Feature)
		para("Evidence read", c.Reads)
		para("Fails in", strings.Join(c.Tests, ", "))
		for _, e := range c.Evidence {
			ec := pdfColor[e.Result]
			pdf.SetFont("Helvetica", "B", 8.5)
			pdf.SetTextColor(ec[0], ec[1], ec[2])
			pdf.Write(4.2, t("["+e.Result.Label()+"] "))
			pdf.SetTextColor(0, 0, 0)
			pdf.SetFont("Helvetica", "", 8.5)
			if l := link(base, e.Link); l != "" && strings.Contains(l, "://") {
				pdf.SetTextColor(9, 105, 218)
				pdf.WriteLinkString(4.2, t(e.Kind+" "+e.Name), l)
				pdf.SetTextColor(0, 0, 0)
			} else {
				pdf.Write(4.2, t(e.Kind+" "+e.Name))
			}
			if e.Detail != "" {
				pdf.Write(4.2, t(" - "+e.Detail))
			}
			if e.Link != "" && !strings.Contains(link(base, e.Link), "://") {
				pdf.Write(4.2, t(" ("+e.Link+")"))
			}
			pdf.Ln(4.6)
		}
		if c.Omitted > 0 {
			pdf.SetFont("Helvetica", "I", 8.5)
			pdf.Write(4.2, t(fmt.Sprintf("%d more passing objects omitted.", c.Omitted)))
			pdf.Ln(4.6)
		}
	}
	if err := pdf.Output(w); err != nil {
		return fmt.Errorf("render report as PDF: %w", err)
	}
	return nil
}
