package vex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"mamori/internal/model"
)

// OpenVEX status labels.
const (
	StatusNotAffected        = "not_affected"
	StatusAffected           = "affected"
	StatusFixed              = "fixed"
	StatusUnderInvestigation = "under_investigation"
)

// Statement is one OpenVEX statement, with the document's timestamp
// inherited when it has none of its own.
type Statement struct {
	// Vulnerability is the vulnerability's name; Aliases its other names.
	Vulnerability string
	Aliases       []string
	// Products are the product identifiers (@id and identifiers.purl);
	// Subcomponents the components of those products the statement is about.
	Products      []Product
	Status        string
	Justification string
	// ImpactStatement is the free-text reason of a not_affected statement.
	ImpactStatement string
	Timestamp       time.Time
	// Document is the @id of the document the statement came from.
	Document string
}

// Product is a product of a statement with its subcomponents' identifiers.
type Product struct {
	IDs           []string
	Subcomponents []string
}

// The OpenVEX JSON forms: v0.2.0 uses objects for vulnerability, products
// and subcomponents; v0.0.1 used plain strings and statement-level
// subcomponents. Both are read.
type vexDoc struct {
	ID         string         `json:"@id"`
	Timestamp  string         `json:"timestamp"`
	Statements []vexStatement `json:"statements"`
}

type vexStatement struct {
	Vulnerability   json.RawMessage   `json:"vulnerability"`
	Products        []json.RawMessage `json:"products"`
	Subcomponents   []json.RawMessage `json:"subcomponents"`
	Status          string            `json:"status"`
	Justification   string            `json:"justification"`
	ImpactStatement string            `json:"impact_statement"`
	Timestamp       string            `json:"timestamp"`
}

type vexVuln struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases"`
}

type vexComponent struct {
	ID            string            `json:"@id"`
	Identifiers   map[string]string `json:"identifiers"`
	Subcomponents []json.RawMessage `json:"subcomponents"`
}

// ParseOpenVEX reads an OpenVEX document into its statements. Statements
// without a vulnerability name or with an unknown status are errors
// (wrapping ErrInvalid).
func ParseOpenVEX(data []byte) ([]Statement, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: VEX document over %d bytes", ErrInvalid, MaxFileBytes)
	}
	var doc vexDoc
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: OpenVEX: %v", ErrInvalid, err)
	}
	docTime := parseVEXTime(doc.Timestamp)
	out := make([]Statement, 0, len(doc.Statements))
	for i, s := range doc.Statements {
		st := Statement{Status: s.Status, Justification: s.Justification, ImpactStatement: s.ImpactStatement, Document: doc.ID, Timestamp: docTime}
		if t := parseVEXTime(s.Timestamp); !t.IsZero() {
			st.Timestamp = t
		}
		switch s.Status {
		case StatusNotAffected, StatusAffected, StatusFixed, StatusUnderInvestigation:
		default:
			return nil, fmt.Errorf("%w: OpenVEX statement %d: unknown status %q", ErrInvalid, i, s.Status)
		}
		var name string
		if err := json.Unmarshal(s.Vulnerability, &name); err == nil {
			st.Vulnerability = name
		} else {
			var v vexVuln
			if err := json.Unmarshal(s.Vulnerability, &v); err != nil {
				return nil, fmt.Errorf("%w: OpenVEX statement %d: vulnerability: %v", ErrInvalid, i, err)
			}
			st.Vulnerability, st.Aliases = v.Name, v.Aliases
		}
		if st.Vulnerability == "" {
			return nil, fmt.Errorf("%w: OpenVEX statement %d: no vulnerability name", ErrInvalid, i)
		}
		stmtSubs, err := componentIDs(s.Subcomponents)
		if err != nil {
			return nil, fmt.Errorf("%w: OpenVEX statement %d: subcomponents: %v", ErrInvalid, i, err)
		}
		for _, raw := range s.Products {
			p, err := parseProduct(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: OpenVEX statement %d: product: %v", ErrInvalid, i, err)
			}
			p.Subcomponents = append(p.Subcomponents, stmtSubs...)
			st.Products = append(st.Products, p)
		}
		if len(s.Products) == 0 && len(stmtSubs) > 0 {
			st.Products = []Product{{Subcomponents: stmtSubs}}
		}
		out = append(out, st)
	}
	return out, nil
}

// LoadOpenVEX reads and parses an OpenVEX document.
func LoadOpenVEX(path string) ([]Statement, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	st, err := ParseOpenVEX(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

func parseProduct(raw json.RawMessage) (Product, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return Product{IDs: []string{s}}, nil
	}
	var c vexComponent
	if err := json.Unmarshal(raw, &c); err != nil {
		return Product{}, err
	}
	p := Product{IDs: c.ids()}
	subs, err := componentIDs(c.Subcomponents)
	if err != nil {
		return Product{}, err
	}
	p.Subcomponents = subs
	return p, nil
}

func (c *vexComponent) ids() []string {
	var ids []string
	if c.ID != "" {
		ids = append(ids, c.ID)
	}
	if p := c.Identifiers["purl"]; p != "" && p != c.ID {
		ids = append(ids, p)
	}
	return ids
}

func componentIDs(raws []json.RawMessage) ([]string, error) {
	var out []string
	for _, raw := range raws {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			out = append(out, s)
			continue
		}
		var c vexComponent
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		out = append(out, c.ids()...)
	}
	return out, nil
}

func parseVEXTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func (st *Statement) namesVulnerability(v model.Vulnerability) bool {
	if idMatches(st.Vulnerability, v) {
		return true
	}
	for _, a := range st.Aliases {
		if idMatches(a, v) {
			return true
		}
	}
	return false
}

// appliesTo reports whether the statement is about v's package: a
// subcomponent names the package (and the product is the scanned artifact,
// when artifact identifiers are known), or, without subcomponents, the
// product names the package itself or is the scanned artifact. A statement
// without products is about the whole artifact.
func (st *Statement) appliesTo(v model.Vulnerability, artifact []string) bool {
	if len(st.Products) == 0 {
		return true
	}
	for _, p := range st.Products {
		isArtifact := anyMatch(p.IDs, artifact)
		if len(p.Subcomponents) > 0 {
			if (len(artifact) == 0 || len(p.IDs) == 0 || isArtifact) && anyMatchOne(p.Subcomponents, v.Package.PURL) {
				return true
			}
			continue
		}
		if isArtifact || anyMatchOne(p.IDs, v.Package.PURL) {
			return true
		}
	}
	return false
}

func anyMatch(patterns, targets []string) bool {
	for _, t := range targets {
		if anyMatchOne(patterns, t) {
			return true
		}
	}
	return false
}

func anyMatchOne(patterns []string, target string) bool {
	for _, p := range patterns {
		if purlMatches(p, target) {
			return true
		}
	}
	return false
}
