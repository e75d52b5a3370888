// Package assessments is the compliance report service: it gathers the
// evidence the server holds — every image's latest scan with its build
// time and signature verification, the registries and their probes, the
// vulnerability database's build time, the policy each cluster enforces,
// the postures the cluster components and the agents report, each node's
// host vulnerabilities (matched here), critical runtime events — and
// assesses it with internal/compliance against a standard. It keeps
// assessment snapshots (the score over time) and re-assesses on a
// schedule and whenever the evidence changes (a scan, a policy, an
// admission decision, a posture, a probe). The API's
// /api/v1/compliance/*, the console's Compliance page and
// `mamori compliance report` call it.
//
// (service/compliance is continuous policy compliance of running pods;
// this service is the standards report.)
package assessments

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"mamori/internal/api"
	"mamori/internal/compliance"
	"mamori/internal/compliance/posture"
	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/service"
	"mamori/internal/service/images"
	"mamori/internal/sign"
	"mamori/internal/store"
)

// Limits, each with its reason.
const (
	// MaxImages bounds the images one report reads (newest scans first); a
	// larger estate is reported on its most recent MaxImages.
	MaxImages = 5000
	// runtimeEventWindow is how far back critical runtime events count
	// for §4.4.4: a day covers the schedule with room.
	runtimeEventWindow = 24 * time.Hour
	// maxRuntimeEvents bounds the events read.
	maxRuntimeEvents = 500
)

// Store is what the service needs of the store.
type Store interface {
	store.AssessmentStore
	ListClusters(ctx context.Context) ([]store.Cluster, error)
	ClusterPolicy(ctx context.Context, cluster string) (store.PolicyVersion, error)
	ListEvents(ctx context.Context, f store.EventFilter) (store.EventPage, error)
}

// Registries lists the configured registries (service/registries).
type Registries interface {
	List(ctx context.Context) ([]store.Registry, error)
}

// Matcher matches host inventories against the server's vulnerability
// database (service/images/vulnmatch).
type Matcher interface {
	MatchInventory(ctx context.Context, inv *model.Inventory) ([]model.Vulnerability, []model.Finding, *model.DBInfo, error)
	DBInfo(ctx context.Context) api.DBInfo
}

// Config are the service's dependencies and settings. Store and Images
// are required.
type Config struct {
	Store      Store
	Images     *images.Service
	Registries Registries
	// Matcher may be nil (host vulnerabilities are then not assessed).
	Matcher  Matcher
	Settings compliance.Settings
	// Schedule is how often every standard is re-assessed even when no
	// evidence changed (time alone ages images and agents); default
	// DefaultSchedule. Poll is how often the evidence is looked at for
	// changes; default DefaultPoll.
	Schedule, Poll time.Duration
	// Keep is how many snapshots are kept per standard (DefaultKeep).
	Keep int
	// RegistryRoots verify registries' certificates in probes and
	// signature verification (nil: the system roots).
	RegistryRoots *x509.CertPool
	// TrustedRoot verifies keyless signatures (nil: rules with identities
	// verify with their keys only, or record why not).
	TrustedRoot *root.TrustedRoot
	// OpenSecret decrypts a registry's stored password (nil: anonymous).
	OpenSecret func(sealed []byte) ([]byte, error)
	Logger     *slog.Logger
	Now        func() time.Time
}

// Defaults, each with its reason.
const (
	// DefaultSchedule: hourly keeps module silence (DefaultModuleMaxAge,
	// an hour) and image age current on the page.
	DefaultSchedule = time.Hour
	// DefaultPoll: the evidence stamp is one small query; ten seconds
	// makes the page follow a scan or a policy change at once.
	DefaultPoll = 10 * time.Second
	// DefaultKeep: a snapshot per change, most estates change a few times
	// a day: a year of history.
	DefaultKeep = 2000
	// snapshotEvery: a snapshot at least daily, even when nothing changed,
	// so the score over time has a point per day.
	snapshotEvery = 24 * time.Hour
)

// Service builds reports.
type Service struct {
	cfg Config
	st  Store
	log *slog.Logger
	now func() time.Time

	// mu serialises re-assessments (the loop and explicit requests).
	mu        sync.Mutex
	lastStamp map[string]int64
	kick      chan string

	vmu       sync.Mutex
	verifiers map[string]*sign.Verifier
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Schedule <= 0 {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	return &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger, now: cfg.Now, kick: make(chan string, 1), verifiers: map[string]*sign.Verifier{}}
}

// Standards are the standards a report can be asked for.
var Standards = []string{compliance.StandardNIST800190, compliance.StandardCISDocker, compliance.StandardCISKubernetes}

// CheckStandard refuses an unknown standard ("" is NIST SP 800-190).
func CheckStandard(standard string) (string, error) {
	if standard == "" {
		return compliance.StandardNIST800190, nil
	}
	if !slices.Contains(Standards, standard) {
		return "", service.Invalid("standard %q: want %s", truncate(standard), strings.Join(Standards, ", "))
	}
	return standard, nil
}

// Report assesses the current evidence against standard.
func (s *Service) Report(ctx context.Context, standard string) (*compliance.Report, error) {
	standard, err := CheckStandard(standard)
	if err != nil {
		return nil, err
	}
	ev, err := s.Evidence(ctx)
	if err != nil {
		return nil, err
	}
	return s.assess(ev, standard)
}

func (s *Service) assess(ev *compliance.Evidence, standard string) (*compliance.Report, error) {
	r, err := compliance.AssessStandard(standard, ev, s.cfg.Settings, s.now())
	if err != nil {
		return nil, service.Invalid("%v", err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("compliance report: %w", err)
	}
	return r, nil
}

// Evidence gathers what the server holds.
func (s *Service) Evidence(ctx context.Context) (*compliance.Evidence, error) {
	ev := &compliance.Evidence{RematchedDBBuiltAt: s.cfg.Images.MatchedDB(ctx)}
	if s.cfg.Matcher != nil {
		if db := s.cfg.Matcher.DBInfo(ctx); db.Available {
			ev.VulnDBBuiltAt = db.BuiltAt
		}
	}
	var regs []store.Registry
	if s.cfg.Registries != nil {
		var err error
		if regs, err = s.cfg.Registries.List(ctx); err != nil {
			return nil, fmt.Errorf("compliance evidence: registries: %w", err)
		}
	}
	if err := s.policies(ctx, ev); err != nil {
		return nil, err
	}
	if err := s.postures(ctx, ev); err != nil {
		return nil, err
	}
	if err := s.images(ctx, ev, regs); err != nil {
		return nil, err
	}
	if err := s.registries(ctx, ev, regs); err != nil {
		return nil, err
	}
	if err := s.runtimeEvents(ctx, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// registryHost is a configured registry's address as image references
// write it (no scheme, no trailing slash).
func registryHost(url string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(url, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	return h
}

func (s *Service) images(ctx context.Context, ev *compliance.Evidence, regs []store.Registry) error {
	built, err := s.st.ImageBuildTimes(ctx)
	if err != nil {
		return fmt.Errorf("compliance evidence: %w", err)
	}
	sigs, err := s.signatures(ctx, ev.Policies)
	if err != nil {
		return err
	}
	hosts := map[string]bool{}
	for _, r := range regs {
		hosts[registryHost(r.URL)] = true
	}
	running := runningImages(ev)
	for page := 0; len(ev.Images) < MaxImages; page++ {
		p, err := s.cfg.Images.ListImages(ctx, store.ImageFilter{Page: store.Page{Limit: 500, Offset: page * 500}})
		if err != nil {
			return fmt.Errorf("compliance evidence: images: %w", err)
		}
		for _, im := range p.Images {
			if im.Type != model.TargetImage {
				continue
			}
			e, err := s.image(ctx, im)
			if err != nil {
				return err
			}
			e.BuiltAt = built[im.ID]
			e.FromRegistryScan = hosts[e.Registry]
			e.Running = running[im.Digest] + running[im.Name]
			e.Signature = signatureOf(sigs, ev.Policies, im.Name, im.Digest)
			ev.Images = append(ev.Images, e)
		}
		if len(p.Images) < 500 {
			break
		}
	}
	return nil
}

// signatures reads the stored verifications under every trust the
// policies use, by trust and digest.
func (s *Service) signatures(ctx context.Context, ps []compliance.PolicyEvidence) (map[string]map[string]store.ImageSignature, error) {
	out := map[string]map[string]store.ImageSignature{}
	for _, p := range ps {
		for _, r := range p.SignatureRules {
			if _, ok := out[r.Trust]; ok || r.Trust == "" {
				continue
			}
			vs, err := s.st.ImageSignatures(ctx, r.Trust)
			if err != nil {
				return nil, fmt.Errorf("compliance evidence: %w", err)
			}
			m := map[string]store.ImageSignature{}
			for _, v := range vs {
				m[v.Digest] = v
			}
			out[r.Trust] = m
		}
	}
	return out, nil
}

// signatureOf is an image's verification under the rules covering it: nil
// when a covering rule has none, the first failed one, else a verified one;
// nil when no rule covers the image.
func signatureOf(sigs map[string]map[string]store.ImageSignature, ps []compliance.PolicyEvidence, ref, digest string) *compliance.SignatureEvidence {
	var ok *compliance.SignatureEvidence
	for _, p := range ps {
		for _, r := range p.SignatureRules {
			if !compliance.RuleCovers(r.Registries, ref) {
				continue
			}
			v, found := sigs[r.Trust][digest]
			if !found || digest == "" {
				return nil
			}
			e := &compliance.SignatureEvidence{Verified: v.Verified, Required: true, Signer: v.Signer, Reason: v.Reason, VerifiedAt: v.VerifiedAt}
			if !v.Verified {
				return e
			}
			ok = e
		}
	}
	return ok
}

// runningImages counts the containers running each image, by digest and
// by reference, from the cluster and node postures.
func runningImages(ev *compliance.Evidence) map[string]int {
	out := map[string]int{}
	for _, c := range ev.Clusters {
		for _, p := range c.Pods {
			for _, im := range p.Images {
				if im.Digest != "" {
					out[im.Digest]++
				} else {
					out[im.Image]++
				}
			}
		}
	}
	if len(ev.Clusters) == 0 {
		for _, n := range ev.Nodes {
			for _, c := range n.Containers {
				if c.Digest != "" {
					out[c.Digest]++
				} else {
					out[c.Image]++
				}
			}
		}
	}
	return out
}

func (s *Service) image(ctx context.Context, im store.ImageSummary) (compliance.ImageEvidence, error) {
	d, err := s.cfg.Images.GetImage(ctx, im.ID)
	if err != nil {
		return compliance.ImageEvidence{}, fmt.Errorf("compliance evidence: image %d: %w", im.ID, err)
	}
	vulns, err := s.cfg.Images.ImageVulnerabilities(ctx, im.ID)
	if err != nil {
		return compliance.ImageEvidence{}, fmt.Errorf("compliance evidence: image %d: %w", im.ID, err)
	}
	e := compliance.ImageEvidence{Ref: im.Name, Digest: im.Digest, Registry: compliance.RegistryOf(im.Name),
		Link: fmt.Sprintf("/images/%d", im.ID), ScannedAt: im.LastScannedAt, Scanners: d.Scanners, Tag: tagOf(im.Name)}
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

func (s *Service) registries(ctx context.Context, ev *compliance.Evidence, regs []store.Registry) error {
	if len(regs) == 0 {
		return nil
	}
	probes, err := s.st.RegistryProbes(ctx)
	if err != nil {
		return fmt.Errorf("compliance evidence: %w", err)
	}
	for _, r := range regs {
		re := compliance.RegistryEvidence{Name: r.Name, Address: r.URL, Private: r.Username != "",
			Link: fmt.Sprintf("/registries#registry-%d", r.ID)}
		if row, ok := probes[r.ID]; ok {
			var p compliance.RegistryProbe
			if err := json.Unmarshal([]byte(row.Body), &p); err != nil {
				s.log.Warn("compliance evidence: unreadable registry probe", "registry", r.Name, "err", err)
			} else {
				re.Probe = &p
			}
		}
		ev.Registries = append(ev.Registries, re)
	}
	return nil
}

// policies reads the policy each cluster enforces.
func (s *Service) policies(ctx context.Context, ev *compliance.Evidence) error {
	cs, err := s.st.ListClusters(ctx)
	if err != nil {
		return fmt.Errorf("compliance evidence: clusters: %w", err)
	}
	for _, c := range cs {
		if c.Policy == "" {
			continue
		}
		v, err := s.st.ClusterPolicy(ctx, c.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("compliance evidence: policy of cluster %s: %w", c.Name, err)
		}
		pe := compliance.PolicyEvidence{Cluster: c.Name, Name: c.Policy, Version: v.Version, Link: "/policies/" + c.Policy}
		doc, err := policy.Parse(c.Policy+".yaml", []byte(v.Document))
		if err != nil {
			// Stored policies were parsed at apply: a failure here is a
			// newer document format; the policy is then not evidence.
			s.log.Warn("compliance evidence: stored policy does not parse", "policy", c.Policy, "err", err)
			continue
		}
		PolicyEvidence(doc, &pe)
		ev.Policies = append(ev.Policies, pe)
	}
	return nil
}

// PolicyEvidence fills what compliance reads of a policy document: whether
// admission blocks, its vulnerability gate and its trusted-image rules.
func PolicyEvidence(p *policy.Policy, pe *compliance.PolicyEvidence) {
	for _, r := range p.Admission {
		block := r.Action == model.ActionBlock
		if block {
			pe.Enforced = true
		}
		if r.Vulnerabilities != nil && block {
			pe.VulnGate = true
		}
	}
	ev, err := policy.Compile(p)
	if err != nil {
		return
	}
	for _, req := range ev.SignatureRequirements() {
		sr := compliance.SignatureRule{Trust: req.Trust, Registries: req.Registries}
		for _, r := range p.Admission {
			if r.Name == req.Rule {
				sr.Block = r.Action == model.ActionBlock
			}
		}
		for _, k := range req.KeyIDs {
			sr.Keys = append(sr.Keys, "key:"+k)
		}
		for _, id := range req.Identities {
			sr.Identities = append(sr.Identities, "identity:"+id.String())
		}
		pe.SignatureRules = append(pe.SignatureRules, sr)
	}
}

// postures reads the cluster and node postures and each node's host
// vulnerabilities, re-matching those matched against an older database.
func (s *Service) postures(ctx context.Context, ev *compliance.Evidence) error {
	cps, err := s.st.ClusterPostures(ctx)
	if err != nil {
		return fmt.Errorf("compliance evidence: %w", err)
	}
	for _, row := range cps {
		var c posture.Cluster
		if err := json.Unmarshal([]byte(row.Body), &c); err != nil {
			s.log.Warn("compliance evidence: unreadable cluster posture", "cluster", row.Cluster, "err", err)
			continue
		}
		c.Cluster = row.Cluster
		ev.Clusters = append(ev.Clusters, c)
	}
	nps, err := s.st.NodePostures(ctx)
	if err != nil {
		return fmt.Errorf("compliance evidence: %w", err)
	}
	for _, row := range nps {
		var n posture.Node
		if err := json.Unmarshal([]byte(row.Body), &n); err != nil {
			s.log.Warn("compliance evidence: unreadable node posture", "cluster", row.Cluster, "node", row.Node, "err", err)
			continue
		}
		n.Cluster, n.Node = row.Cluster, row.Node
		vulns, ok := s.hostVulns(ctx, row, &n, ev.VulnDBBuiltAt)
		if ok {
			if ev.HostVulns == nil {
				ev.HostVulns = map[string][]model.Vulnerability{}
			}
			ev.HostVulns[n.Node] = vulns
		}
		ev.Nodes = append(ev.Nodes, n)
	}
	return nil
}

// hostVulns returns a node's matched host vulnerabilities, matching again
// when the stored match used another database than the current one.
func (s *Service) hostVulns(ctx context.Context, row store.NodePosture, n *posture.Node, current time.Time) ([]model.Vulnerability, bool) {
	if n.Inventory == nil {
		return nil, false
	}
	if row.Vulns != "" && (current.IsZero() || row.DBBuiltAt.Equal(current)) {
		var vs []model.Vulnerability
		if err := json.Unmarshal([]byte(row.Vulns), &vs); err == nil {
			return vs, true
		}
	}
	vs, err := s.matchHost(ctx, row.Cluster, row.Node, row.ReceivedAt, n.Inventory)
	if err != nil {
		if !errors.Is(err, errNoMatcher) {
			s.log.Warn("compliance evidence: host inventory match", "cluster", row.Cluster, "node", row.Node, "err", err)
		}
		return nil, false
	}
	return vs, true
}

var errNoMatcher = errors.New("no vulnerability database")

// matchHost matches a node's host inventory and stores the result.
func (s *Service) matchHost(ctx context.Context, cluster, node string, receivedAt time.Time, inv *model.Inventory) ([]model.Vulnerability, error) {
	if s.cfg.Matcher == nil {
		return nil, errNoMatcher
	}
	vs, _, db, err := s.cfg.Matcher.MatchInventory(ctx, inv)
	if err != nil {
		if strings.Contains(err.Error(), "no vulnerability database") {
			return nil, errNoMatcher
		}
		return nil, err
	}
	if vs == nil {
		vs = []model.Vulnerability{}
	}
	b, err := json.Marshal(vs)
	if err != nil {
		return nil, fmt.Errorf("encode host vulnerabilities: %w", err)
	}
	m := store.HostMatch{Vulns: string(b), MatchedAt: s.now().UTC()}
	if db != nil {
		m.DBBuiltAt = db.BuiltAt
	}
	if err := s.st.PutHostMatch(ctx, cluster, node, receivedAt, m); err != nil && !errors.Is(err, store.ErrStale) {
		return nil, err
	}
	return vs, nil
}

func (s *Service) runtimeEvents(ctx context.Context, ev *compliance.Evidence) error {
	sev := model.SeverityCritical
	p, err := s.st.ListEvents(ctx, store.EventFilter{Source: string(model.SourceRuntime), MinSeverity: &sev,
		Since: s.now().Add(-runtimeEventWindow), Limit: maxRuntimeEvents})
	if err != nil {
		return fmt.Errorf("compliance evidence: runtime events: %w", err)
	}
	for _, r := range p.Events {
		e := r.Event
		ev.RuntimeEvents = append(ev.RuntimeEvents, compliance.EventEvidence{ID: e.ID, Time: e.Time, Node: e.Node, Rule: e.Rule.ID,
			Severity: e.Severity, Action: string(e.Action), Link: "/events?rule=" + e.Rule.ID})
	}
	return nil
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
