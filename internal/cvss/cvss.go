// Package cvss scores CVSS v2.0, v3.0, v3.1 and v4.0 vectors and maps
// scores to mamori's severity scale.
//
// Scoring is github.com/pandatix/go-cvss, which implements the FIRST
// specifications. For v2.0 and v3.x the score is the base score (what NVD
// and OSV publish; temporal and environmental metrics in the vector are
// validated but do not change it). For v4.0 it is the CVSS-B, -BT, -BE or
// -BTE score the vector's metrics describe, as FIRST's v4.0 calculator
// computes it.
package cvss

import (
	"errors"
	"fmt"
	"math"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"

	"mamori/internal/model"
)

// Versions, as Score returns them.
const (
	V2  = "2.0"
	V30 = "3.0"
	V31 = "3.1"
	V40 = "4.0"
)

// maxVectorLen bounds a vector: the longest valid one (v4.0 with every
// base, threat, environmental and supplemental metric) is under 300 bytes.
const maxVectorLen = 512

var (
	// ErrInvalid is wrapped by every error of Score.
	ErrInvalid = errors.New("cvss: invalid vector")
)

// Score parses vector and returns its CVSS version ("2.0", "3.0", "3.1" or
// "4.0") and score. v3 and v4 vectors start with "CVSS:3.x/" or
// "CVSS:4.0/"; anything else is read as a v2 vector, which may be given
// bare ("AV:N/AC:L/Au:N/C:P/I:P/A:P"), in parentheses (old NVD feeds) or
// with a "CVSS:2.0/" prefix.
func Score(vector string) (version string, score float64, err error) {
	v := strings.TrimSpace(vector)
	if v == "" {
		return "", 0, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(v) > maxVectorLen {
		return "", 0, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxVectorLen)
	}
	switch {
	case strings.HasPrefix(v, "CVSS:4.0/"):
		c, err := gocvss40.ParseVector(v)
		if err != nil {
			return "", 0, fmt.Errorf("%w: %q: %w", ErrInvalid, vector, err)
		}
		return checked(V40, c.Score(), vector)
	case strings.HasPrefix(v, "CVSS:3.1/"):
		c, err := gocvss31.ParseVector(v)
		if err != nil {
			return "", 0, fmt.Errorf("%w: %q: %w", ErrInvalid, vector, err)
		}
		return checked(V31, c.BaseScore(), vector)
	case strings.HasPrefix(v, "CVSS:3.0/"):
		c, err := gocvss30.ParseVector(v)
		if err != nil {
			return "", 0, fmt.Errorf("%w: %q: %w", ErrInvalid, vector, err)
		}
		return checked(V30, c.BaseScore(), vector)
	case strings.HasPrefix(v, "CVSS:"):
		if !strings.HasPrefix(v, "CVSS:2.0/") {
			return "", 0, fmt.Errorf("%w: %q: unknown CVSS version", ErrInvalid, vector)
		}
		v = strings.TrimPrefix(v, "CVSS:2.0/")
	}
	if strings.HasPrefix(v, "(") && strings.HasSuffix(v, ")") {
		v = v[1 : len(v)-1]
	}
	c, err := gocvss20.ParseVector(v)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q: %w", ErrInvalid, vector, err)
	}
	return checked(V2, c.BaseScore(), vector)
}

// checked guards against a scorer bug ever leaking a score outside 0–10.
func checked(version string, score float64, vector string) (string, float64, error) {
	if math.IsNaN(score) || score < 0 || score > 10 {
		return "", 0, fmt.Errorf("%w: %q: score %v out of range", ErrInvalid, vector, score)
	}
	return version, score, nil
}

// SeverityFromScore maps a score to a severity with the qualitative scale
// NVD and FIRST publish. v3.x and v4.0: 0.1–3.9 Low, 4.0–6.9 Medium,
// 7.0–8.9 High, 9.0–10.0 Critical, and 0.0 ("None") is Negligible. v2.0
// (NVD's v2 scale has no Critical): 0.1–3.9 Low, 4.0–6.9 Medium, 7.0–10.0
// High, 0.0 Negligible. An unknown version or a score outside 0–10 is
// Unknown.
func SeverityFromScore(version string, score float64) model.Severity {
	if math.IsNaN(score) || score < 0 || score > 10 {
		return model.SeverityUnknown
	}
	switch version {
	case V2, V30, V31, V40:
	default:
		return model.SeverityUnknown
	}
	switch {
	case score == 0:
		return model.SeverityNegligible
	case score < 4.0:
		return model.SeverityLow
	case score < 7.0:
		return model.SeverityMedium
	case version == V2:
		return model.SeverityHigh
	case score < 9.0:
		return model.SeverityHigh
	}
	return model.SeverityCritical
}

// Scored is one vector with what Score made of it. Err is set, and the
// other fields are empty, when the vector could not be scored.
type Scored struct {
	Vector   string         `json:"vector"`
	Version  string         `json:"version,omitempty"`
	Score    float64        `json:"score"`
	Severity model.Severity `json:"severity"`
	Err      error          `json:"-"`
}

// preference ranks versions: v4.0 > v3.1 > v3.0 > v2.0.
func preference(version string) int {
	switch version {
	case V40:
		return 4
	case V31:
		return 3
	case V30:
		return 2
	case V2:
		return 1
	}
	return 0
}

// SeverityFromVectors scores every vector and returns the severity of the
// preferred one, v4.0 over v3.1 over v3.0 over v2.0; among vectors of the
// same version the first wins (callers list the primary source first).
// The slice has one entry per input vector, in order, failed ones with Err
// set. With no valid vector the severity is Unknown.
func SeverityFromVectors(vectors []string) (model.Severity, []Scored) {
	out := make([]Scored, 0, len(vectors))
	best := -1
	for _, v := range vectors {
		s := Scored{Vector: v}
		version, score, err := Score(v)
		if err != nil {
			s.Err = err
		} else {
			s.Version, s.Score = version, score
			s.Severity = SeverityFromScore(version, score)
			if best < 0 || preference(version) > preference(out[best].Version) {
				best = len(out)
			}
		}
		out = append(out, s)
	}
	if best < 0 {
		return model.SeverityUnknown, out
	}
	return out[best].Severity, out
}
