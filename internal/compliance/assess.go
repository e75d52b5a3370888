package compliance

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"mamori/internal/compliance/posture"
	"mamori/internal/model"
	"mamori/internal/policy"
)

// Settings are the thresholds of an assessment. Zero fields take the
// defaults.
type Settings struct {
	// VulnThreshold: a fixable vulnerability at or above it fails 4.1.1,
	// 4.4.1 and 4.5.3.
	VulnThreshold model.Severity
	// MisconfigThreshold: a finding at or above it fails 4.1.2.
	MisconfigThreshold model.Severity
	// MaxImageAge: a registry image not rebuilt for longer is stale (4.2.2).
	MaxImageAge time.Duration
	// ModuleMaxAge: a protection module whose last activity is older is
	// not active (4.4.4, 4.5.5).
	ModuleMaxAge time.Duration
}

// Defaults, each with its reason.
const (
	// DefaultVulnThreshold: High and above with a fix is what every CI gate
	// of the field blocks by default.
	DefaultVulnThreshold = model.SeverityHigh
	// DefaultMisconfigThreshold: High misconfigurations are the CIS items
	// that give an attacker root or secrets.
	DefaultMisconfigThreshold = model.SeverityHigh
	// DefaultMaxImageAge: 90 days is the longest rebuild interval the CIS
	// and distribution security teams recommend for base images.
	DefaultMaxImageAge = 90 * 24 * time.Hour
	// DefaultModuleMaxAge: an agent reports every few minutes; an hour of
	// silence means the module is not working.
	DefaultModuleMaxAge = time.Hour
)

func (s Settings) withDefaults() Settings {
	if s.VulnThreshold == model.SeverityUnknown {
		s.VulnThreshold = DefaultVulnThreshold
	}
	if s.MisconfigThreshold == model.SeverityUnknown {
		s.MisconfigThreshold = DefaultMisconfigThreshold
	}
	if s.MaxImageAge <= 0 {
		s.MaxImageAge = DefaultMaxImageAge
	}
	if s.ModuleMaxAge <= 0 {
		s.ModuleMaxAge = DefaultModuleMaxAge
	}
	return s
}

// Reasons for "not assessed", naming the component that has not reported.
const (
	reasonNoImages     = "not assessed: no image scanned yet (scanner not run)"
	reasonNoCluster    = "not assessed: cluster component not deployed"
	reasonNoAgent      = "not assessed: agent not deployed"
	reasonNoPolicy     = "not assessed: policy not deployed (no policy in force)"
	reasonNoRegistry   = "not assessed: no registry configured"
	reasonNoProbe      = "not assessed: registry probe not run"
	reasonNoHostMatch  = "not assessed: host inventory not matched (agent inventory not reported)"
	reasonNoRegImages  = "not assessed: no registry scan and no cluster component (no stale-image evidence)"
	reasonNoContainers = "not assessed: neither agent nor cluster component deployed"
)

// judge collects the evidence of one control.
type judge struct {
	ev      []EvidenceRef
	missing []string
	na      string
}

func (j *judge) add(res Status, kind, name, detail, link string) {
	j.ev = append(j.ev, EvidenceRef{Kind: kind, Name: name, Result: res, Detail: detail, Link: link})
}
func (j *judge) pass(kind, name, detail, link string) { j.add(StatusPass, kind, name, detail, link) }
func (j *judge) fail(kind, name, detail, link string) { j.add(StatusFail, kind, name, detail, link) }

// need records a missing source.
func (j *judge) need(reason string) { j.missing = append(j.missing, reason) }

func (j *judge) result(c Control) ControlResult {
	r := ControlResult{Control: c, Evidence: []EvidenceRef{}}
	sort.SliceStable(j.ev, func(a, b int) bool { return j.ev[a].Result == StatusFail && j.ev[b].Result != StatusFail })
	var fails int
	for _, e := range j.ev {
		if e.Result == StatusFail {
			fails++
		}
	}
	switch {
	case fails > 0:
		r.Status = StatusFail
		first := j.ev[0]
		r.Reason = fmt.Sprintf("%s %s: %s", first.Kind, first.Name, first.Detail)
		if fails > 1 {
			r.Reason += fmt.Sprintf(" (and %d more)", fails-1)
		}
	case len(j.missing) > 0:
		r.Status = StatusNotAssessed
		r.Reason = strings.Join(slices.Compact(j.missing), "; ")
	case len(j.ev) == 0 && j.na != "":
		r.Status = StatusNotApplicable
		r.Reason = j.na
	case len(j.ev) == 0:
		r.Status = StatusNotAssessed
		r.Reason = "not assessed: no evidence"
	default:
		r.Status = StatusPass
	}
	if len(j.ev) > MaxEvidence {
		keep := max(MaxEvidence, min(fails, 10*MaxEvidence))
		if keep < len(j.ev) {
			r.Omitted = len(j.ev) - keep
			j.ev = j.ev[:keep]
		}
	}
	r.Evidence = append(r.Evidence, j.ev...)
	return r
}

// assessor decides one control.
type assessor func(a *assessment, j *judge)

type assessment struct {
	ev  *Evidence
	set Settings
	now time.Time
	// scanned indexes the stored images by digest and by reference.
	scanned map[string]*ImageEvidence
}

// assessors is the explicit list: one per NIST SP 800-190 control.
func assessors() map[string]assessor {
	return map[string]assessor{
		"4.1.1": assessImageVulns,
		"4.1.2": assessImageConfig,
		"4.1.3": assessMalware,
		"4.1.4": assessSecrets,
		"4.1.5": assessTrustedImages,
		"4.2.1": assessRegistryTLS,
		"4.2.2": assessStaleImages,
		"4.2.3": assessRegistryAuth,
		"4.3.1": assessAdminAccess,
		"4.3.2": assessUnauthorizedAccess,
		"4.3.3": assessNetworkSeparation,
		"4.3.4": assessSensitivityMixing,
		"4.3.5": assessNodeTrust,
		"4.4.1": assessRuntimeVulns,
		"4.4.2": assessEgress,
		"4.4.3": assessRuntimeConfig,
		"4.4.4": assessAppRuntime,
		"4.4.5": assessRogueContainers,
		"4.5.1": assessAttackSurface,
		"4.5.2": assessSharedKernel,
		"4.5.3": assessHostVulns,
		"4.5.4": assessUserAccess,
		"4.5.5": assessHostFS,
	}
}

// Assess decides every control of NIST SP 800-190 from ev at time now.
func Assess(ev *Evidence, set Settings, now time.Time) *Report {
	a := &assessment{ev: ev, set: set.withDefaults(), now: now.UTC(), scanned: map[string]*ImageEvidence{}}
	for i := range ev.Images {
		im := &ev.Images[i]
		if im.Digest != "" {
			a.scanned[im.Digest] = im
		}
		a.scanned[im.Ref] = im
	}
	as := assessors()
	r := &Report{SchemaVersion: ReportSchemaVersion, Standard: StandardNIST800190,
		Title: "NIST SP 800-190 Application Container Security Guide", GeneratedAt: a.now}
	for _, c := range NIST800190() {
		j := &judge{}
		if f, ok := as[c.ID]; ok {
			f(a, j)
		} else {
			j.need("not assessed: no assessor")
		}
		r.Controls = append(r.Controls, j.result(c))
	}
	r.finish(Groups)
	return r
}

func (r *Report) finish(groups []string) {
	r.Summary = summarize("", r.Controls)
	r.Groups = []Summary{}
	for _, g := range groups {
		r.Groups = append(r.Groups, summarize(g, r.Controls))
	}
}

func has(list []string, s string) bool { return slices.Contains(list, s) }

// eachImage runs f on every stored image, or records that none exists.
func (a *assessment) eachImage(j *judge, f func(im *ImageEvidence)) {
	if len(a.ev.Images) == 0 {
		j.need(reasonNoImages)
		return
	}
	for i := range a.ev.Images {
		f(&a.ev.Images[i])
	}
}

func assessImageVulns(a *assessment, j *judge) {
	a.eachImage(j, func(im *ImageEvidence) {
		if !has(im.Scanners, "vuln") {
			j.fail("image", im.Ref, "the vulnerability scanner did not run in its latest scan", im.Link)
			return
		}
		var bad []string
		for _, v := range im.Vulnerabilities {
			if v.Severity >= a.set.VulnThreshold && v.Fixed != "" {
				bad = append(bad, fmt.Sprintf("%s (%s %s, fixed in %s)", v.ID, v.Package, v.Severity, v.Fixed))
			}
		}
		if len(bad) > 0 {
			j.fail("image", im.Ref, fmt.Sprintf("%d fixable vulnerabilities at %s or above: %s", len(bad), a.set.VulnThreshold, first(bad, 5)), im.Link)
			return
		}
		j.pass("image", im.Ref, fmt.Sprintf("%d vulnerabilities, none fixable at %s or above", len(im.Vulnerabilities), a.set.VulnThreshold), im.Link)
	})
}

func first(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:n], ", ") + fmt.Sprintf(", … %d more", len(xs)-n)
}

// findingsOf lists the findings of kind serving control at or above min.
func findingsOf(fs []FindingBrief, kind model.FindingKind, control string, minSev model.Severity) []string {
	var out []string
	for _, f := range fs {
		if f.Kind != kind || f.Severity < minSev || (control != "" && !has(f.Controls, control)) {
			continue
		}
		s := f.ID
		if f.Where != "" {
			s += " at " + f.Where
		}
		out = append(out, s)
	}
	return out
}

func assessImageConfig(a *assessment, j *judge) {
	a.eachImage(j, func(im *ImageEvidence) {
		if !has(im.Scanners, "misconfig") {
			j.fail("image", im.Ref, "the misconfiguration checks did not run in its latest scan", im.Link)
			return
		}
		if bad := findingsOf(im.Findings, model.KindMisconfig, "4.1.2", a.set.MisconfigThreshold); len(bad) > 0 {
			j.fail("image", im.Ref, fmt.Sprintf("%d configuration defects at %s or above: %s", len(bad), a.set.MisconfigThreshold, first(bad, 5)), im.Link)
			return
		}
		j.pass("image", im.Ref, fmt.Sprintf("no configuration defect at %s or above", a.set.MisconfigThreshold), im.Link)
	})
}

func assessMalware(a *assessment, j *judge) {
	a.eachImage(j, func(im *ImageEvidence) {
		if !has(im.Scanners, "malware") {
			j.fail("image", im.Ref, "the malware scanner did not run in its latest scan", im.Link)
			return
		}
		if bad := findingsOf(im.Findings, model.KindMalware, "", model.SeverityUnknown); len(bad) > 0 {
			j.fail("image", im.Ref, fmt.Sprintf("malware: %s", first(bad, 5)), im.Link)
			return
		}
		j.pass("image", im.Ref, "malware scan clean", im.Link)
	})
}

func assessSecrets(a *assessment, j *judge) {
	a.eachImage(j, func(im *ImageEvidence) {
		if !has(im.Scanners, "secret") {
			j.fail("image", im.Ref, "the secret scanner did not run in its latest scan", im.Link)
			return
		}
		if bad := findingsOf(im.Findings, model.KindSecret, "", model.SeverityUnknown); len(bad) > 0 {
			j.fail("image", im.Ref, fmt.Sprintf("%d secrets: %s", len(bad), first(bad, 5)), im.Link)
			return
		}
		j.pass("image", im.Ref, "no secret found", im.Link)
	})
}

// RegistryOf returns the registry host of an image reference as it is
// written ("docker.io" for a bare name).
func RegistryOf(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	first, rest, ok := strings.Cut(name, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		_ = rest
		return "docker.io"
	}
	return first
}

// requiredRule returns the signature rule of p covering an image's
// registry (nil: the image needs no signature under p).
func requiredRule(p *PolicyEvidence, ref string) *SignatureRule {
	for i := range p.SignatureRules {
		if RuleCovers(p.SignatureRules[i].Registries, ref) {
			return &p.SignatureRules[i]
		}
	}
	return nil
}

// RuleCovers reports whether an image reference is from one of the
// registries of a signature rule, as the policy's signatures criterion
// reads them (hosts, repository globs, "*").
func RuleCovers(registries []string, ref string) bool { return policy.RegistryCovers(registries, ref) }

// signatureRequired reports whether any enforced policy requires a
// signature of ref.
func (a *assessment) signatureRequired(ref string) bool {
	for i := range a.ev.Policies {
		if requiredRule(&a.ev.Policies[i], ref) != nil {
			return true
		}
	}
	return false
}

func assessTrustedImages(a *assessment, j *judge) {
	if len(a.ev.Policies) == 0 {
		j.need(reasonNoPolicy)
		return
	}
	for i := range a.ev.Policies {
		p := &a.ev.Policies[i]
		name := p.Name
		if p.Cluster != "" {
			name = p.Cluster + ": " + p.Name
		}
		switch {
		case len(p.SignatureRules) == 0:
			j.fail("policy", name, "no trusted-image rule (images from these registries must be signed)", p.Link)
			continue
		case !p.Enforced:
			j.fail("policy", name, "the policy is not enforced (admission in log mode)", p.Link)
			continue
		}
		regs := []string{}
		blocks := true
		for _, r := range p.SignatureRules {
			if !r.Block {
				blocks = false
				j.fail("policy", name, fmt.Sprintf("the signature rule for %s only logs", strings.Join(r.Registries, ", ")), p.Link)
			}
			regs = append(regs, r.Registries...)
		}
		if blocks {
			j.pass("policy", name, "signatures required for "+strings.Join(regs, ", "), p.Link)
		}
	}
	for i := range a.ev.Images {
		im := &a.ev.Images[i]
		if !a.signatureRequired(im.Ref) {
			continue
		}
		switch s := im.Signature; {
		case s == nil:
			j.fail("image", im.Ref, "signature required, never verified", im.Link)
		case !s.Verified:
			j.fail("image", im.Ref, "signature required: "+s.Reason, im.Link)
		default:
			j.pass("image", im.Ref, "signed by "+s.Signer, im.Link)
		}
	}
	// Running images of a required registry that no scan ever verified.
	for _, c := range a.ev.Clusters {
		for _, pod := range c.Pods {
			for _, pi := range pod.Images {
				if !a.signatureRequired(pi.Image) || a.lookup(pi.Image, pi.Digest) != nil {
					continue
				}
				j.fail("pod", c.Cluster+"/"+pod.Namespace+"/"+pod.Name, pi.Image+": signature required, image never verified", "")
			}
		}
	}
}

func (a *assessment) lookup(ref, digest string) *ImageEvidence {
	if digest != "" {
		if im, ok := a.scanned[digest]; ok {
			return im
		}
	}
	if im, ok := a.scanned[ref]; ok {
		return im
	}
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return a.scanned[d]
	}
	return nil
}

func (a *assessment) eachRegistry(j *judge, f func(r *RegistryEvidence, p *RegistryProbe)) {
	if len(a.ev.Registries) == 0 {
		j.need(reasonNoRegistry)
		return
	}
	probed := 0
	for i := range a.ev.Registries {
		r := &a.ev.Registries[i]
		if r.Probe == nil {
			continue
		}
		probed++
		f(r, r.Probe)
	}
	if probed == 0 {
		j.need(reasonNoProbe)
	}
}

func assessRegistryTLS(a *assessment, j *judge) {
	a.eachRegistry(j, func(r *RegistryEvidence, p *RegistryProbe) {
		switch {
		case p.Error != "" && !p.TLS:
			j.fail("registry", r.Name, "probe failed: "+p.Error, r.Link)
		case !p.TLS:
			j.fail("registry", r.Name, "reached over plain HTTP", r.Link)
		case !p.CertValid:
			j.fail("registry", r.Name, "certificate not valid: "+p.CertError, r.Link)
		default:
			d := "TLS with a valid certificate"
			if !p.CertExpires.IsZero() {
				d += ", expires " + p.CertExpires.Format("2006-01-02")
			}
			j.pass("registry", r.Name, d, r.Link)
		}
	})
}

func assessRegistryAuth(a *assessment, j *judge) {
	private := 0
	a.eachRegistry(j, func(r *RegistryEvidence, p *RegistryProbe) {
		if !r.Private {
			return
		}
		private++
		if len(p.Anonymous) == 0 {
			j.fail("registry", r.Name, "anonymous pull not probed: "+p.Error, r.Link)
			return
		}
		var allowed, refused, unknown []string
		for repo, out := range p.Anonymous {
			switch out {
			case "refused":
				refused = append(refused, repo)
			case "allowed":
				allowed = append(allowed, repo)
			default:
				unknown = append(unknown, repo+" ("+out+")")
			}
		}
		sort.Strings(allowed)
		sort.Strings(refused)
		sort.Strings(unknown)
		switch {
		case len(allowed) > 0:
			j.fail("registry", r.Name, "anonymous pull allowed of private repositories: "+first(allowed, 5), r.Link)
		case len(refused) > 0:
			j.pass("registry", r.Name, "anonymous pull refused: "+first(refused, 5), r.Link)
		default:
			j.need("not assessed: anonymous pull of " + r.Name + " undecided: " + first(unknown, 3))
		}
	})
	if private == 0 && len(j.ev) == 0 {
		j.na = "not applicable: no registry configured with credentials (no private repository)"
	}
}

// isLatest reports whether a reference runs the 'latest' tag (named or implied).
func isLatest(ref string) bool {
	if strings.Contains(ref, "@") {
		return false
	}
	i := strings.LastIndex(ref, "/")
	tail := ref[i+1:]
	_, tag, ok := strings.Cut(tail, ":")
	return !ok || tag == "latest"
}

func assessStaleImages(a *assessment, j *judge) {
	seen := false
	for i := range a.ev.Images {
		im := &a.ev.Images[i]
		if !im.FromRegistryScan && im.Running == 0 {
			continue
		}
		seen = true
		var why []string
		if plausibleBuild(im.BuiltAt) && a.now.Sub(im.BuiltAt) > a.set.MaxImageAge {
			why = append(why, fmt.Sprintf("not rebuilt for %d days (built %s)", int(a.now.Sub(im.BuiltAt).Hours()/24), im.BuiltAt.Format("2006-01-02")))
		}
		matched := im.DBBuiltAt
		if has(im.Scanners, "vuln") && a.ev.RematchedDBBuiltAt.After(matched) {
			matched = a.ev.RematchedDBBuiltAt
		}
		if !a.ev.VulnDBBuiltAt.IsZero() && matched.Before(a.ev.VulnDBBuiltAt) {
			why = append(why, "not scanned or re-matched since the vulnerability DB update of "+a.ev.VulnDBBuiltAt.Format("2006-01-02 15:04"))
		}
		if len(why) > 0 {
			j.fail("image", im.Ref, strings.Join(why, "; "), im.Link)
			continue
		}
		d := "scanned " + im.ScannedAt.Format("2006-01-02 15:04")
		if plausibleBuild(im.BuiltAt) {
			d = fmt.Sprintf("built %s, %s", im.BuiltAt.Format("2006-01-02"), d)
		}
		j.pass("image", im.Ref, d, im.Link)
	}
	for _, c := range a.ev.Clusters {
		seen = true
		latest := 0
		for _, pod := range c.Pods {
			for _, pi := range pod.Images {
				if isLatest(pi.Image) {
					latest++
					j.fail("pod", pod.Namespace+"/"+pod.Name, "runs "+pi.Image+" ('latest' tag)", "")
				}
			}
		}
		if latest == 0 {
			j.pass("cluster", c.Cluster, fmt.Sprintf("%d running pods, none on 'latest'", len(c.Pods)), "")
		}
	}
	if !seen {
		j.need(reasonNoRegImages)
	}
}

// plausibleBuild: reproducible builds set the configuration's creation
// time to the epoch (or leave it out); such a time says nothing of the
// image's age.
func plausibleBuild(t time.Time) bool { return t.Year() >= 2000 }

func (a *assessment) eachCluster(j *judge, f func(c *posture.Cluster)) {
	if len(a.ev.Clusters) == 0 {
		j.need(reasonNoCluster)
		return
	}
	for i := range a.ev.Clusters {
		f(&a.ev.Clusters[i])
	}
}

func (a *assessment) eachNode(j *judge, f func(n *posture.Node)) {
	if len(a.ev.Nodes) == 0 {
		j.need(reasonNoAgent)
		return
	}
	for i := range a.ev.Nodes {
		f(&a.ev.Nodes[i])
	}
}

func assessAdminAccess(a *assessment, j *judge) {
	a.eachCluster(j, func(c *posture.Cluster) {
		bad := 0
		for _, b := range c.Bindings {
			if b.Allowed {
				continue
			}
			bad++
			name := b.Name
			if b.Namespace != "" {
				name = b.Namespace + "/" + b.Name
			}
			j.fail("binding", b.Kind+" "+name, fmt.Sprintf("grants %s (%s) to %s", b.Role, b.Reason, strings.Join(b.Subjects, ", ")), "")
		}
		if bad == 0 {
			j.pass("cluster", c.Cluster, fmt.Sprintf("%d bindings reviewed, none grants cluster-admin or a wildcard role to a non-system subject", c.BindingsReviewed), "")
		}
	})
}

// items adds posture items serving control (or all when control is "").
func items(j *judge, kind, owner string, its []posture.Item, control string) int {
	n := 0
	for _, it := range its {
		if control != "" && !has(it.Controls, control) {
			continue
		}
		name := owner + " " + it.ID
		detail := it.Title
		if it.Actual != "" {
			detail += ": " + it.Actual
		}
		switch it.Status {
		case posture.Pass:
			j.pass(kind, name, detail, "")
			n++
		case posture.Fail:
			j.fail(kind, name, detail, "")
			n++
		}
	}
	return n
}

func assessUnauthorizedAccess(a *assessment, j *judge) {
	a.eachCluster(j, func(c *posture.Cluster) {
		items(j, "setting", c.Cluster, c.Anonymous, "")
		items(j, "setting", c.Cluster, c.APIServer, "4.3.2")
	})
	a.eachNode(j, func(n *posture.Node) {
		if n.HasKubelet {
			items(j, "setting", n.Node, n.Kubelet, "4.3.2")
		}
	})
}

func assessNetworkSeparation(a *assessment, j *judge) {
	a.eachCluster(j, func(c *posture.Cluster) {
		for _, ns := range c.Namespaces {
			if ns.Pods == 0 {
				continue
			}
			if !ns.DefaultDenyIngress {
				j.fail("namespace", c.Cluster+"/"+ns.Name, fmt.Sprintf("no default-deny ingress NetworkPolicy (%d pods, policies: %s)", ns.Pods, orNone(ns.Policies)), "")
				continue
			}
			j.pass("namespace", c.Cluster+"/"+ns.Name, "default-deny ingress: "+strings.Join(ns.Policies, ", "), "")
		}
	})
	if len(a.ev.Clusters) > 0 && len(j.ev) == 0 {
		j.na = "not applicable: no application namespace runs pods"
	}
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func assessSensitivityMixing(a *assessment, j *judge) {
	a.eachCluster(j, func(c *posture.Cluster) {
		for _, n := range c.Nodes {
			levels := make([]string, 0, len(n.Levels))
			for l := range n.Levels {
				levels = append(levels, l)
			}
			sort.Strings(levels)
			if len(levels) > 1 {
				var parts []string
				for _, l := range levels {
					name := l
					if name == "" {
						name = "(unlabelled)"
					}
					parts = append(parts, fmt.Sprintf("%s: %s", name, first(n.Levels[l], 3)))
				}
				j.fail("node", c.Cluster+"/"+n.Node, "runs workloads of different sensitivity: "+strings.Join(parts, "; "), "")
				continue
			}
			l := "(unlabelled)"
			if len(levels) == 1 && levels[0] != "" {
				l = levels[0]
			}
			j.pass("node", c.Cluster+"/"+n.Node, "one sensitivity level: "+l, "")
		}
	})
	if len(a.ev.Clusters) > 0 && len(j.ev) == 0 {
		j.na = "not applicable: no running workload carries a sensitivity label (" + SensitivityLabel + ")"
	}
}

// SensitivityLabel is the pod label naming a workload's sensitivity level.
const SensitivityLabel = "mamori.io/sensitivity"

func assessNodeTrust(a *assessment, j *judge) {
	kubelets := 0
	a.eachNode(j, func(n *posture.Node) {
		if !n.HasKubelet {
			return
		}
		kubelets++
		items(j, "setting", n.Node, n.Kubelet, "4.3.5")
	})
	if len(a.ev.Nodes) > 0 && kubelets == 0 {
		j.na = "not applicable: no node runs a kubelet"
	}
}

// hostVulns returns the fixable vulnerabilities at or above the threshold
// of a node's packages for which keep is true.
func (a *assessment) hostVulns(node string, keep func(v model.Vulnerability) bool) (bad []string, total int) {
	for _, v := range a.ev.HostVulns[node] {
		if !keep(v) {
			continue
		}
		total++
		if v.Severity >= a.set.VulnThreshold && v.FixedVersion != "" {
			bad = append(bad, fmt.Sprintf("%s (%s %s)", v.ID, v.Package.Name, v.Package.Version))
		}
	}
	return bad, total
}

// RuntimeComponent names the runtime software (containerd, runc, the
// kubelet, docker, cri-o) a host package is: an OS package of that name,
// or any package found in a binary of that name (a Go binary's modules
// are in its path). A library embedded in another tool (the Docker client
// module in kubectl) is not runtime software. "" for other packages.
func RuntimeComponent(name, path string) string {
	switch name {
	case "containerd", "containerd.io":
		return "containerd"
	case "runc":
		return "runc"
	case "kubelet", "kubernetes-node":
		return "kubelet"
	case "cri-o":
		return "cri-o"
	case "docker-ce", "docker.io", "moby-engine":
		return "docker"
	}
	if path == "" || strings.HasSuffix(path, "/status") || strings.Contains(path, "/dpkg/") || strings.Contains(path, "/rpm/") {
		return ""
	}
	base := path[strings.LastIndex(path, "/")+1:]
	switch {
	case base == "containerd" || strings.HasPrefix(base, "containerd-shim"):
		return "containerd"
	case base == "runc":
		return "runc"
	case base == "kubelet":
		return "kubelet"
	case base == "dockerd":
		return "docker"
	case base == "crio":
		return "cri-o"
	}
	return ""
}

func isRuntimeVuln(v model.Vulnerability) bool {
	return RuntimeComponent(v.Package.Name, v.Package.Path) != ""
}

func assessRuntimeVulns(a *assessment, j *judge) {
	a.eachNode(j, func(n *posture.Node) {
		if a.ev.HostVulns == nil || n.Inventory == nil {
			j.need(reasonNoHostMatch)
			return
		}
		bad, total := a.hostVulns(n.Node, isRuntimeVuln)
		var comps []string
		for _, c := range n.Components {
			comps = append(comps, c.Name+" "+c.Version)
		}
		if len(bad) > 0 {
			j.fail("node", n.Node, fmt.Sprintf("runtime software with fixable vulnerabilities at %s or above: %s", a.set.VulnThreshold, first(bad, 5)), "")
			return
		}
		if len(comps) == 0 {
			j.need("not assessed: no runtime software found on node " + n.Node)
			return
		}
		j.pass("node", n.Node, fmt.Sprintf("%s: %d vulnerabilities, none fixable at %s or above", strings.Join(comps, ", "), total, a.set.VulnThreshold), "")
	})
}

// podFindings adds every running pod's findings serving control.
func (a *assessment) podFindings(j *judge, c *posture.Cluster, control string, okDetail string) {
	bad := 0
	for _, pod := range c.Pods {
		var fs []string
		for _, f := range pod.Findings {
			if has(f.Controls, control) && f.Severity >= a.set.MisconfigThreshold {
				fs = append(fs, f.ID+" "+f.Title)
			}
		}
		if len(fs) > 0 {
			bad++
			j.fail("pod", c.Cluster+"/"+pod.Namespace+"/"+pod.Name, first(fs, 4), "")
		}
	}
	if bad == 0 {
		j.pass("cluster", c.Cluster, fmt.Sprintf("%d running pods, %s at %s or above", len(c.Pods), okDetail, a.set.MisconfigThreshold), "")
	}
}

func assessEgress(a *assessment, j *judge) {
	a.eachCluster(j, func(c *posture.Cluster) {
		for _, ns := range c.Namespaces {
			if ns.Pods == 0 {
				continue
			}
			if !ns.DefaultDenyEgress {
				j.fail("namespace", c.Cluster+"/"+ns.Name, "no default-deny egress NetworkPolicy", "")
				continue
			}
			j.pass("namespace", c.Cluster+"/"+ns.Name, "default-deny egress", "")
		}
		a.podFindings(j, c, "4.4.2", "none on the host network")
	})
}

func assessRuntimeConfig(a *assessment, j *judge) {
	a.eachCluster(j, func(c *posture.Cluster) {
		a.podFindings(j, c, "4.4.3", "none with an insecure runtime configuration")
	})
}

func (a *assessment) module(j *judge, n *posture.Node, name, title string) {
	m, ok := n.Modules[name]
	switch {
	case !ok:
		j.fail("module", n.Node+" "+name, title+" not running on the node", "")
	case !m.Active:
		j.fail("module", n.Node+" "+name, title+" not active: "+m.Detail, "")
	case !m.LastActivity.IsZero() && a.now.Sub(m.LastActivity) > a.set.ModuleMaxAge:
		j.fail("module", n.Node+" "+name, fmt.Sprintf("%s silent since %s", title, m.LastActivity.Format(time.RFC3339)), "")
	default:
		j.pass("module", n.Node+" "+name, title+" active: "+m.Detail, "")
	}
}

func assessAppRuntime(a *assessment, j *judge) {
	a.eachNode(j, func(n *posture.Node) {
		a.module(j, n, "runtime", "runtime sensor")
	})
	for _, e := range a.ev.RuntimeEvents {
		if e.Severity >= model.SeverityCritical && (e.Action == string(model.ActionLog) || e.Action == "allow" || e.Action == "") {
			j.fail("event", e.ID, fmt.Sprintf("critical runtime event %s on %s only logged", e.Rule, e.Node), e.Link)
		}
	}
}

func assessRogueContainers(a *assessment, j *judge) {
	if len(a.ev.Nodes) == 0 && len(a.ev.Clusters) == 0 {
		j.need(reasonNoContainers)
		return
	}
	for _, n := range a.ev.Nodes {
		unmanaged := 0
		for _, c := range n.Containers {
			if n.HasKubelet && !c.Managed {
				unmanaged++
				j.fail("container", n.Node+" "+shortID(c.ID), fmt.Sprintf("%s container of %s that no orchestrator manages", c.Runtime, c.Image), "")
			}
			if a.lookup(c.Image, c.Digest) == nil {
				j.fail("container", n.Node+" "+shortID(c.ID), "runs "+c.Image+", never scanned", "")
			}
		}
		if unmanaged == 0 {
			j.pass("node", n.Node, fmt.Sprintf("%d containers, all managed by the orchestrator", len(n.Containers)), "")
		}
	}
	for _, c := range a.ev.Clusters {
		never := 0
		for _, pod := range c.Pods {
			for _, pi := range pod.Images {
				if a.lookup(pi.Image, pi.Digest) == nil {
					never++
					j.fail("pod", c.Cluster+"/"+pod.Namespace+"/"+pod.Name, "runs "+pi.Image+", never scanned", "")
				}
			}
		}
		if never == 0 {
			j.pass("cluster", c.Cluster, fmt.Sprintf("%d running pods, every image scanned", len(c.Pods)), "")
		}
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func assessAttackSurface(a *assessment, j *judge) {
	a.eachNode(j, func(n *posture.Node) {
		if !n.ListeningRead {
			j.need("not assessed: listening sockets not read on node " + n.Node + " (no /proc given)")
			return
		}
		var extra, expected []string
		for _, l := range n.Listening {
			s := fmt.Sprintf("%s %s:%d", l.Proto, l.Address, l.Port)
			if l.Process != "" {
				s += " (" + l.Process + ")"
			}
			if l.Expected {
				expected = append(expected, s)
			} else {
				extra = append(extra, s)
			}
		}
		if len(extra) > 0 {
			j.fail("node", n.Node, "unexpected listening services: "+first(extra, 8), "")
			return
		}
		j.pass("node", n.Node, fmt.Sprintf("%d listening sockets, all expected", len(expected)), "")
	})
}

func assessSharedKernel(a *assessment, j *judge) {
	a.eachCluster(j, func(c *posture.Cluster) {
		a.podFindings(j, c, "4.5.2", "none sharing the host's namespaces")
	})
}

func assessHostVulns(a *assessment, j *judge) {
	a.eachNode(j, func(n *posture.Node) {
		if a.ev.HostVulns == nil || n.Inventory == nil {
			j.need(reasonNoHostMatch)
			return
		}
		bad, total := a.hostVulns(n.Node, func(v model.Vulnerability) bool { return !isRuntimeVuln(v) })
		if len(bad) > 0 {
			j.fail("node", n.Node, fmt.Sprintf("%d fixable host vulnerabilities at %s or above: %s", len(bad), a.set.VulnThreshold, first(bad, 5)), "")
			return
		}
		j.pass("node", n.Node, fmt.Sprintf("%d packages, %d vulnerabilities, none fixable at %s or above", len(n.Inventory.Packages), total, a.set.VulnThreshold), "")
	})
}

func assessUserAccess(a *assessment, j *judge) {
	a.eachNode(j, func(n *posture.Node) {
		bad := 0
		for _, u := range n.Users {
			if u.UID == 0 && u.Name != "root" {
				bad++
				j.fail("user", n.Node+" "+u.Name, "a second account with UID 0", "")
			}
		}
		for _, r := range n.Sudoers {
			if !r.Allowed {
				bad++
				np := ""
				if r.NoPasswd {
					np = " without a password"
				}
				j.fail("sudoers", fmt.Sprintf("%s %s:%d", n.Node, r.File, r.Line), fmt.Sprintf("grants %s to %s%s", r.Spec, r.Who, np), "")
			}
		}
		for _, it := range n.SSHD {
			if it.Status == posture.Fail {
				bad++
			}
		}
		items(j, "setting", n.Node, n.SSHD, "")
		if bad == 0 {
			j.pass("node", n.Node, fmt.Sprintf("%d login users, %d sudoers rules, all within the baseline", len(n.Users), len(n.Sudoers)), "")
		}
	})
}

func assessHostFS(a *assessment, j *judge) {
	a.eachNode(j, func(n *posture.Node) {
		a.module(j, n, "integrity", "file integrity monitoring")
		a.module(j, n, "antimalware", "anti-malware")
	})
	for i := range a.ev.Clusters {
		a.podFindings(j, &a.ev.Clusters[i], "4.5.5", "none mounting sensitive host paths")
	}
}
