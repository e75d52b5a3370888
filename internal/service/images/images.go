// Package images is the images service: scan ingest (one validation,
// model.Result's Upgrade and Validate, then the store), the views of
// images, scans and vulnerabilities (with the one query syntax of the
// vulnerability list, ParseVulnerabilityFilter, that the API and the
// console share) and deletion. Matching against the vulnerability DB (a
// fresh result, the re-match of every stored inventory) is its
// subpackage vulnmatch.
package images

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/store"
)

// Store is what the service needs of the store.
type Store interface {
	store.ImageStore
	store.VulnerabilityStore
	store.MetaStore
	store.ImageRefStore
}

// Service ingests and shows scanned images and their vulnerabilities.
type Service struct {
	st  Store
	log *slog.Logger
	now func() time.Time
	use UseMarker
}

// UseMarker marks vulnerabilities with what the runtime agents saw
// containers of the image load (service/loads): MarkResult before a result
// is stored, Touch to have the stored rows re-marked after.
type UseMarker interface {
	// MarkResult reports whether the image has agent data (observed).
	MarkResult(ctx context.Context, digest string, inv *model.Inventory, vulns []model.Vulnerability) (observed bool, err error)
	Touch(digests ...string)
}

// SetUseMarker makes ingest mark results in use at run time (call it
// before the service is used).
func (s *Service) SetUseMarker(m UseMarker) { s.use = m }

// New returns the service over st.
func New(st Store, log *slog.Logger, now func() time.Time) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, log: log, now: now}
}

// Ingest stores one scan result: upgraded to the current schema when an
// older mamori wrote it, validated (model.Result.Validate, with the
// server's clock), then stored in one transaction. An invalid result is an
// error wrapping service.ErrInvalid and stores nothing.
func (s *Service) Ingest(ctx context.Context, res *model.Result) (store.IngestOutcome, error) {
	if err := res.Upgrade(); err != nil {
		return store.IngestOutcome{}, service.Invalid("invalid scan result: %v", err)
	}
	if err := res.Validate(s.now()); err != nil {
		return store.IngestOutcome{}, service.Invalid("invalid scan result: %v", err)
	}
	digest := ""
	if res.Target.Type == model.TargetImage {
		digest = res.Target.Digest
	}
	touch := false
	if s.use != nil {
		// A failure leaves the marks as the producer sent them: logged,
		// and redone by the marker (Touch below).
		observed, err := s.use.MarkResult(ctx, digest, &res.Inventory, res.Vulnerabilities)
		if err != nil {
			s.log.Warn("scan ingest: in-use marks", "target", res.Target.Name, "err", err)
		}
		touch = (observed || err != nil) && digest != ""
	}
	out, err := s.st.IngestScan(ctx, res)
	if err == nil && touch {
		s.use.Touch(digest) // loads that arrived while this was stored
	}
	if errors.Is(err, store.ErrInvalid) {
		return store.IngestOutcome{}, service.Invalid("invalid scan result: %v", err)
	}
	if err != nil {
		return store.IngestOutcome{}, fmt.Errorf("scan: %w", err)
	}
	s.log.Info("scan ingested", append([]any{"target", res.Target.Name, "scanID", res.ScanID, "status", out.Status,
		"imageID", out.ImageID, "packages", out.Packages, "vulnerabilities", out.Vulnerabilities}, service.Actor(ctx)...)...)
	return out, nil
}

// ListImages lists images with their latest scan's counts.
func (s *Service) ListImages(ctx context.Context, f store.ImageFilter) (store.ImagePage, error) {
	return s.st.ListImages(ctx, f)
}

// GetImage returns one image with its latest inventory and findings.
func (s *Service) GetImage(ctx context.Context, id int64) (*store.ImageDetail, error) {
	img, err := s.st.GetImage(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return img, nil
}

// DeleteImage removes an image, its scans and everything they stored.
func (s *Service) DeleteImage(ctx context.Context, id int64) error {
	if err := s.st.DeleteImage(ctx, id); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	s.log.Info("image deleted", append([]any{"imageID", id}, service.Actor(ctx)...)...)
	return nil
}

// ImageVulnerabilities returns an image's vulnerability rows, worst first;
// store.ErrNotFound when the image does not exist.
func (s *Service) ImageVulnerabilities(ctx context.Context, id int64) ([]model.Vulnerability, error) {
	if _, err := s.st.GetImage(ctx, id); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return s.st.ListImageVulnerabilities(ctx, id)
}

// ImageFindings returns an image's findings of one kind ("" = all), worst
// first; store.ErrNotFound when the image does not exist.
func (s *Service) ImageFindings(ctx context.Context, id int64, kind model.FindingKind) ([]model.Finding, error) {
	switch kind {
	case "", model.KindSecret, model.KindMalware, model.KindMisconfig:
	default:
		return nil, service.Invalid("invalid kind %q: want secret, malware or misconfig", truncate(string(kind)))
	}
	if _, err := s.st.GetImage(ctx, id); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return s.st.ListFindings(ctx, id, kind)
}

// ListScans lists recorded scans, newest first.
func (s *Service) ListScans(ctx context.Context, f store.ScanFilter) (store.ScanPage, error) {
	return s.st.ListScans(ctx, f)
}

// ListVulnerabilities lists the vulnerabilities affecting at least one image.
func (s *Service) ListVulnerabilities(ctx context.Context, f store.VulnerabilityFilter) (store.VulnerabilityPage, error) {
	return s.st.ListVulnerabilities(ctx, f)
}

// GetVulnerability returns one vulnerability (by ID or alias) with a page
// of affected rows.
func (s *Service) GetVulnerability(ctx context.Context, id string, affected store.Page) (*store.VulnerabilityDetail, error) {
	if id == "" || len(id) > 256 {
		return nil, service.Invalid("invalid vulnerability id")
	}
	d, err := s.st.GetVulnerability(ctx, id, affected)
	if err != nil {
		return nil, fmt.Errorf("vulnerability: %w", err)
	}
	return d, nil
}

// Query parameter names of the vulnerability list, the same for the API
// and the console.
const (
	VulnParamQuery    = "q"
	VulnParamPackage  = "package"
	VulnParamSeverity = "severity"
	VulnParamCVSSMin  = "cvssMin"
	VulnParamCVSSMax  = "cvssMax"
	VulnParamFixable  = "fixable"
	// VulnParamKEV keeps known exploited vulnerabilities (CISA KEV),
	// VulnParamEPSSMin those whose EPSS probability is at least this.
	VulnParamKEV     = "kev"
	VulnParamEPSSMin = "epssMin"
	VulnParamImage   = "image"
	VulnParamSort    = "sort"
	VulnParamReverse = "reverse"
	// VulnParamRunning keeps vulnerabilities of images running now (the
	// runtime vulnerability view); VulnParamCluster narrows it to a cluster.
	VulnParamRunning = "running"
	VulnParamCluster = "cluster"
	// VulnParamInUse keeps vulnerabilities whose package a running
	// container executed or loaded (the node agents' reports).
	VulnParamInUse = "inUse"
)

// ParseVulnerabilityFilter reads the vulnerability list's filters and
// order from query parameters (the VulnParam* names; severity repeated or
// comma-separated; the page is the caller's). A bad value is an error
// wrapping service.ErrInvalid, never dropped.
func ParseVulnerabilityFilter(q url.Values) (store.VulnerabilityFilter, error) {
	f := store.VulnerabilityFilter{Query: strings.TrimSpace(q.Get(VulnParamQuery)), Package: strings.TrimSpace(q.Get(VulnParamPackage)),
		Sort: store.VulnerabilitySort(q.Get(VulnParamSort))}
	if len(f.Query) > 200 || len(f.Package) > 200 {
		return f, service.Invalid("q and package: at most 200 bytes")
	}
	switch f.Sort {
	case "", store.VulnSortSeverity, store.VulnSortID, store.VulnSortPackage, store.VulnSortImages, store.VulnSortCVSS,
		store.VulnSortPriority:
	default:
		return f, service.Invalid("invalid sort %q: want priority, severity, id, package, images or cvss", truncate(string(f.Sort)))
	}
	seen := map[model.Severity]bool{}
	for _, v := range q[VulnParamSeverity] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			sev, err := model.ParseSeverity(name)
			if err != nil || len(name) > 16 {
				return f, service.Invalid("invalid severity %q: want critical, high, medium, low, negligible or unknown", truncate(name))
			}
			if !seen[sev] {
				seen[sev] = true
				f.Severities = append(f.Severities, sev)
			}
		}
	}
	for _, b := range []struct {
		name string
		dst  **float64
	}{{VulnParamCVSSMin, &f.CVSSMin}, {VulnParamCVSSMax, &f.CVSSMax}} {
		v := strings.TrimSpace(q.Get(b.name))
		if v == "" {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 || x > 10 || x != x {
			return f, service.Invalid("invalid %s %q: want a number from 0 to 10", b.name, truncate(v))
		}
		*b.dst = &x
	}
	if f.CVSSMin != nil && f.CVSSMax != nil && *f.CVSSMin > *f.CVSSMax {
		return f, service.Invalid("cvssMin is above cvssMax")
	}
	if v := strings.TrimSpace(q.Get(VulnParamEPSSMin)); v != "" {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 || x > 1 || x != x {
			return f, service.Invalid("invalid %s %q: want a probability from 0 to 1", VulnParamEPSSMin, truncate(v))
		}
		f.EPSSMin = &x
	}
	var err error
	if f.FixableOnly, err = boolParam(q, VulnParamFixable); err != nil {
		return f, err
	}
	if f.KnownExploited, err = boolParam(q, VulnParamKEV); err != nil {
		return f, err
	}
	if f.Reverse, err = boolParam(q, VulnParamReverse); err != nil {
		return f, err
	}
	if f.Running, err = boolParam(q, VulnParamRunning); err != nil {
		return f, err
	}
	if f.InUse, err = boolParam(q, VulnParamInUse); err != nil {
		return f, err
	}
	if f.Cluster = strings.TrimSpace(q.Get(VulnParamCluster)); f.Cluster != "" {
		if !f.Running {
			return f, service.Invalid("cluster: only with running=true")
		}
		if len(f.Cluster) > 100 {
			return f, service.Invalid("cluster: at most 100 bytes")
		}
	}
	if v := q.Get(VulnParamImage); v != "" {
		if f.ImageID, err = strconv.ParseInt(v, 10, 64); err != nil || f.ImageID <= 0 {
			return f, service.Invalid("invalid image %q", truncate(v))
		}
	}
	return f, nil
}

func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, service.Invalid("invalid %s %q: want true or false", name, truncate(v))
	}
	return b, nil
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
