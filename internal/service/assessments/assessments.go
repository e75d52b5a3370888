// Package assessments is the compliance report service: it gathers the
// evidence the server holds (every image's latest scan, the registries
// and their probes, the vulnerability database's build time; the cluster
// and node postures once their components report them) and assesses it
// with internal/compliance against a standard. The API's
// GET /api/v1/compliance/report and the CLI's `mamori compliance report`
// call Report.
//
// (service/compliance is continuous policy compliance of running pods;
// this service is the standards report.)
package assessments

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"mamori/internal/compliance"
	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/service/images"
	"mamori/internal/store"
)

// MaxImages bounds the images one report reads (newest scans first); a
// larger estate is reported on its most recent MaxImages and says so.
const MaxImages = 5000

// Registries lists the configured registries (service/registries).
type Registries interface {
	List(ctx context.Context) ([]store.Registry, error)
}

// Probes gives a registry's latest probe, nil when none ran.
type Probes func(ctx context.Context, r store.Registry) *compliance.RegistryProbe

// Service builds reports.
type Service struct {
	images     *images.Service
	registries Registries
	probes     Probes
	log        *slog.Logger
	now        func() time.Time
	settings   compliance.Settings
}

// New returns the service. probes may be nil (no registry probe yet).
func New(im *images.Service, regs Registries, probes Probes, set compliance.Settings, log *slog.Logger, now func() time.Time) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Service{images: im, registries: regs, probes: probes, log: log, now: now, settings: set}
}

// Report assesses the evidence against standard (compliance.StandardNIST800190).
func (s *Service) Report(ctx context.Context, standard string) (*compliance.Report, error) {
	if standard == "" {
		standard = compliance.StandardNIST800190
	}
	if standard != compliance.StandardNIST800190 {
		return nil, service.Invalid("standard %q: want %s", truncate(standard), compliance.StandardNIST800190)
	}
	ev, err := s.Evidence(ctx)
	if err != nil {
		return nil, err
	}
	r := compliance.Assess(ev, s.settings, s.now())
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("compliance report: %w", err)
	}
	return r, nil
}

// Evidence gathers what the server holds.
func (s *Service) Evidence(ctx context.Context) (*compliance.Evidence, error) {
	ev := &compliance.Evidence{VulnDBBuiltAt: s.images.MatchedDB(ctx)}
	for page := 0; len(ev.Images) < MaxImages; page++ {
		p, err := s.images.ListImages(ctx, store.ImageFilter{Page: store.Page{Limit: 500, Offset: page * 500}})
		if err != nil {
			return nil, fmt.Errorf("compliance evidence: images: %w", err)
		}
		for _, im := range p.Images {
			if im.Type != model.TargetImage {
				continue
			}
			e, err := s.image(ctx, im)
			if err != nil {
				return nil, err
			}
			ev.Images = append(ev.Images, e)
		}
		if len(p.Images) < 500 {
			break
		}
	}
	if s.registries != nil {
		regs, err := s.registries.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("compliance evidence: registries: %w", err)
		}
		for _, r := range regs {
			re := compliance.RegistryEvidence{Name: r.Name, Address: r.URL, Private: r.Username != "",
				Link: fmt.Sprintf("/registries/%d", r.ID)}
			if s.probes != nil {
				re.Probe = s.probes(ctx, r)
			}
			ev.Registries = append(ev.Registries, re)
		}
	}
	return ev, nil
}

func (s *Service) image(ctx context.Context, im store.ImageSummary) (compliance.ImageEvidence, error) {
	d, err := s.images.GetImage(ctx, im.ID)
	if err != nil {
		return compliance.ImageEvidence{}, fmt.Errorf("compliance evidence: image %d: %w", im.ID, err)
	}
	vulns, err := s.images.ImageVulnerabilities(ctx, im.ID)
	if err != nil {
		return compliance.ImageEvidence{}, fmt.Errorf("compliance evidence: image %d: %w", im.ID, err)
	}
	e := compliance.ImageEvidence{Ref: im.Name, Digest: im.Digest, Registry: compliance.RegistryOf(im.Name),
		Link: fmt.Sprintf("/images/%d", im.ID), ScannedAt: im.LastScannedAt, Scanners: d.Scanners}
	if tag := tagOf(im.Name); tag != "" {
		e.Tag = tag
	}
	if d.DB != nil {
		e.DBBuiltAt = d.DB.BuiltAt
	}
	for _, v := range vulns {
		e.Vulnerabilities = append(e.Vulnerabilities, compliance.VulnSummary{ID: v.ID, Package: v.Package.Name,
			Version: v.Package.Version, Severity: v.Severity, Fixed: v.FixedVersion})
	}
	for _, f := range d.Findings {
		e.Findings = append(e.Findings, compliance.FindingBrief{Kind: f.Kind, ID: f.ID, Title: f.Title, Severity: f.Severity,
			Controls: f.Controls, Where: f.Location.Path})
	}
	return e, nil
}

func tagOf(ref string) string {
	if strings.Contains(ref, "@") {
		return ""
	}
	i := strings.LastIndex(ref, "/")
	_, tag, _ := strings.Cut(ref[i+1:], ":")
	return tag
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
