package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mamori/internal/model"
	"mamori/internal/policy"
)

// Failure policies of the component: what admission does when it cannot
// decide (no policy loaded yet, the server unreachable and nothing cached
// about an image).
const (
	FailurePolicyIgnore = "Ignore"
	FailurePolicyFail   = "Fail"
)

// clusterView gives admission what it needs of the cluster's state (the
// inventory watcher's caches).
type clusterView interface {
	// NamespaceLabels returns a namespace's labels.
	NamespaceLabels(ctx context.Context, name string) map[string]string
	// PodLabels returns a pod's labels.
	PodLabels(ctx context.Context, namespace, name string) map[string]string
}

// Stats count admission decisions.
type Stats struct {
	Requests, Allowed, Denied, Warned, CacheHits, FailurePolicy, InlineScans atomic.Int64
	// Signature verification: checks of an image under a signatures rule
	// by requests, those answered from the cache, verifications run
	// against the registry (their registry requests and total time),
	// refused, failed (registry or credentials) and requests that stopped
	// waiting at their deadline.
	SignatureChecks, SignatureCacheHits, Verifications, SignatureRoundTrips, VerifyNanos atomic.Int64
	SignatureRefused, SignatureErrors, SignatureTimeouts                                 atomic.Int64
}

// decider decides admission requests with the cluster's policy.
type decider struct {
	pol     *policies
	img     *images
	scan    *scanner // nil: no inline scans
	sig     *signatures
	view    clusterView
	cache   *decisionCache
	events  *eventSender
	failure string
	exclude map[string]bool
	log     *slog.Logger
	now     func() time.Time
	stats   *Stats
}

// Decide implements admission.Decider.
func (d *decider) Decide(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	d.stats.Requests.Add(1)
	resp := d.decide(ctx, req)
	switch {
	case !resp.Allowed:
		d.stats.Denied.Add(1)
	case len(resp.Warnings) > 0:
		d.stats.Warned.Add(1)
		d.stats.Allowed.Add(1)
	default:
		d.stats.Allowed.Add(1)
	}
	return resp
}

func allow() *admissionv1.AdmissionResponse { return &admissionv1.AdmissionResponse{Allowed: true} }

func deny(msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{Status: metav1.StatusFailure, Code: 403,
		Reason: metav1.StatusReasonForbidden, Message: msg}}
}

// accessSubresources are the pod subresources of the access webhook.
var accessSubresources = map[string]string{"exec": policy.OpExec, "attach": policy.OpAttach, "portforward": policy.OpPortForward}

func (d *decider) decide(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if d.exclude[req.Namespace] {
		return allow()
	}
	st := d.pol.current()
	if !st.known {
		return d.failurePolicy(req, "no policy is loaded yet (the server has not been reached)")
	}
	if st.p == nil {
		return allow() // the cluster has no policy
	}
	if op, ok := accessSubresources[req.SubResource]; ok && req.Resource.Resource == "pods" {
		return d.access(ctx, req, st.p, op)
	}
	if req.SubResource != "" && req.SubResource != "ephemeralcontainers" {
		return allow()
	}
	if !slices.Contains(policy.WorkloadKinds, req.Kind.Kind) {
		return allow()
	}
	return d.workload(ctx, req, st.p)
}

// failurePolicy answers a request the component cannot decide.
func (d *decider) failurePolicy(req *admissionv1.AdmissionRequest, why string) *admissionv1.AdmissionResponse {
	d.stats.FailurePolicy.Add(1)
	if d.failure == FailurePolicyFail {
		return deny("mamori: " + why + "; the failure policy is Fail")
	}
	r := allow()
	r.Warnings = []string{"mamori: " + why + "; admitted by the failure policy Ignore"}
	return r
}

func dryRun(req *admissionv1.AdmissionRequest) bool { return req.DryRun != nil && *req.DryRun }

// access decides an exec, attach or port-forward request.
func (d *decider) access(ctx context.Context, req *admissionv1.AdmissionRequest, p *Policy, op string) *admissionv1.AdmissionResponse {
	a := &policy.Access{Operation: op, Namespace: req.Namespace, Pod: req.Name, User: req.UserInfo.Username, Groups: req.UserInfo.Groups}
	var opts struct {
		Container string   `json:"container"`
		Command   []string `json:"command"`
	}
	if len(req.Object.Raw) > 0 {
		if err := json.Unmarshal(req.Object.Raw, &opts); err != nil {
			return d.failurePolicy(req, fmt.Sprintf("cannot read the %s request: %v", op, err))
		}
	}
	a.Container, a.Command = opts.Container, opts.Command
	a.PodLabels = d.view.PodLabels(ctx, req.Namespace, req.Name)
	a.NamespaceLabels = d.view.NamespaceLabels(ctx, req.Namespace)
	dec := p.Eval.Evaluate(a, d.now())
	resp := response(dec)
	if !dryRun(req) && (len(dec.Violations) > 0 || len(dec.Exempted) > 0) {
		e := d.event(req, p, dec, resp)
		e.Pod = req.Name
		e.Details["operation"] = op
		if a.Container != "" {
			e.Container = &model.ContainerRef{Name: a.Container}
		}
		if len(a.Command) > 0 {
			e.Process = &model.Process{Args: truncateArgs(a.Command)}
		}
		d.events.add(e)
	}
	return resp
}

func truncateArgs(args []string) []string {
	if len(args) > 64 {
		args = args[:64]
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = truncate(a, 1024)
	}
	return out
}

// workload decides a Pod or pod controller being created or updated.
func (d *decider) workload(ctx context.Context, req *admissionv1.AdmissionRequest, p *Policy) *admissionv1.AdmissionResponse {
	w, err := policy.DecodeWorkload(req.Object.Raw)
	if err != nil {
		return d.failurePolicy(req, fmt.Sprintf("cannot read the %s: %v", req.Kind.Kind, err))
	}
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 && req.SubResource == "" {
		// Nothing new runs when the pod template is unchanged (a scale, a
		// label, a controller's own update): only changes are judged.
		if old, err := policy.DecodeWorkload(req.OldObject.Raw); err == nil && sameTemplate(old, w) {
			return allow()
		}
	}
	if w.Namespace == "" {
		w.Namespace = req.Namespace
	}
	w.NamespaceLabels = d.view.NamespaceLabels(ctx, w.Namespace)
	refs := workloadImages(w.Spec)
	data := d.img.resolve(ctx, refs)
	reqs := p.Eval.SignatureRequirements()
	sigs := d.verifySignatures(ctx, reqs, w, refs)
	key, cacheable := d.cacheKey(p, w, data, sigs)
	if cacheable {
		if resp, ok := d.cache.get(key); ok {
			d.stats.CacheHits.Add(1)
			return resp
		}
	}
	w.Images = data.scans
	for _, r := range data.unresolved {
		// The server is away and nothing is cached: the policy sees a scan
		// that could not be had (its onScanFailure decides); the failure
		// policy decides below too.
		w.Images[r] = policy.ImageScan{ScanError: "mamori server unreachable and no cached scan data"}
	}
	withSignatures(w.Images, sigs)
	now := d.now()
	dec := p.Eval.Evaluate(w, now)
	dry := dryRun(req)
	if len(dec.NeedScan) > 0 {
		for _, r := range dec.NeedScan {
			is := d.scanInline(ctx, req, w, r, dry)
			is.Signatures = w.Images[r].Signatures
			w.Images[r] = is
		}
		dec = p.Eval.Evaluate(w, now)
		cacheable = false // the next request sees the scan in the image data
	}
	relaxUnverified(p.Eval, &dec, reqs, sigs)
	resp := response(dec)
	if len(data.unresolved) > 0 {
		cacheable = false
		why := "the mamori server is unreachable and nothing is cached about " + strings.Join(data.unresolved, ", ")
		if d.failure == FailurePolicyFail && resp.Allowed {
			d.stats.FailurePolicy.Add(1)
			fp := deny("mamori: " + why + "; the failure policy is Fail")
			fp.Warnings = resp.Warnings
			resp = fp
		} else {
			resp.Warnings = append(resp.Warnings, "mamori: "+why)
		}
	}
	if data.stale {
		resp.Warnings = append(resp.Warnings, "mamori: the server is unreachable: decided with cached scan data")
	}
	if !dry {
		for _, r := range dec.ScanAfter {
			// An image whose scan just failed is not tried again at once
			// (its failure is cached for the image TTL).
			if d.scan != nil && w.Images[r].ScanError == "" {
				d.scan.start(ScanRequest{Ref: r, Namespace: w.Namespace, PullSecrets: pullSecrets(w.Spec)})
			}
		}
		if len(dec.Violations) > 0 || len(dec.Exempted) > 0 || len(data.unresolved) > 0 {
			d.events.add(d.workloadEvent(req, w, p, dec, resp))
		}
	}
	if cacheable && !data.stale {
		d.cache.put(key, resp, now)
	}
	return resp
}

// scanInline scans an image never seen within the request's deadline.
func (d *decider) scanInline(ctx context.Context, req *admissionv1.AdmissionRequest, w *policy.Workload, ref string, dry bool) policy.ImageScan {
	if dry {
		return policy.ImageScan{ScanError: "not scanned: a dry run has no side effects"}
	}
	if d.scan == nil {
		return policy.ImageScan{ScanError: errNoScanner.Error()}
	}
	d.stats.InlineScans.Add(1)
	// The scanner records the outcome in the image cache (a scan that
	// outlives the deadline serves the next request).
	data, err := d.scan.scan(ctx, ScanRequest{Ref: ref, Namespace: w.Namespace, PullSecrets: pullSecrets(w.Spec)})
	if err != nil {
		return policy.ImageScan{ScanError: err.Error()}
	}
	if data == nil || !data.Found || data.Result == nil {
		return policy.ImageScan{ScanError: "the server did not return the scan"}
	}
	return policy.ImageScan{Result: data.Result}
}

// verifySignatures verifies the workload's images that the policy's
// signatures rules cover, within a share of the request's deadline
// (maxSignatureWait, at most half of what is left).
func (d *decider) verifySignatures(ctx context.Context, reqs []policy.SignatureRequirement, w *policy.Workload, refs []string) map[string]map[string]sigOutcome {
	if d.sig == nil || len(reqs) == 0 {
		return nil
	}
	wait := maxSignatureWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/2)
	}
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return d.sig.check(sctx, reqs, refs, sigRequest{namespace: w.Namespace, pullSecrets: pullSecrets(w.Spec)})
}

// withSignatures puts the verifications into the policy's subject
// (ImageScan.Signatures by rule trust), as mamori image --policy does.
func withSignatures(images map[string]policy.ImageScan, sigs map[string]map[string]sigOutcome) {
	for ref, m := range sigs {
		is := images[ref]
		is.Signatures = make(map[string]policy.SignatureCheck, len(m))
		for trust, o := range m {
			is.Signatures[trust] = o.check
		}
		images[ref] = is
	}
}

// relaxUnverified applies the policy's handling of images that could not
// be scanned to images whose verification did not finish (the deadline,
// the registry or its credentials): with onScanFailure allow (or
// unknownImages allow) the signatures violation is logged, not blocking,
// and the verification's result decides the next request; with block it
// blocks. A refused signature always blocks under a block rule.
func relaxUnverified(ev *policy.Evaluator, dec *policy.Decision, reqs []policy.SignatureRequirement, sigs map[string]map[string]sigOutcome) {
	action, onFailure := ev.UnknownImages()
	if len(sigs) == 0 || action == policy.UnknownBlock || (action == policy.UnknownScan && onFailure == policy.UnknownBlock) {
		return
	}
	changed := false
	for i := range dec.Violations {
		v := &dec.Violations[i]
		if v.Control != policy.CtlSignatures || v.Action != model.ActionBlock {
			continue
		}
		for _, r := range reqs {
			if o, ok := sigs[v.Image][r.Trust]; ok && r.Rule == v.Rule && o.incomplete {
				v.Action = model.ActionLog
				v.Message += " (admitted: the policy's onScanFailure is allow)"
				changed = true
				break
			}
		}
	}
	if !changed {
		return
	}
	dec.Action = model.ActionAllow
	for _, v := range dec.Violations {
		switch {
		case v.Action == model.ActionBlock:
			dec.Action = model.ActionBlock
		case dec.Action == model.ActionAllow:
			dec.Action = v.Action
		}
	}
}

// sameTemplate reports whether two versions of a workload run the same pods.
func sameTemplate(a, b *policy.Workload) bool {
	return equality.Semantic.DeepEqual(a.Spec, b.Spec) && equality.Semantic.DeepEqual(a.PodLabels, b.PodLabels) &&
		equality.Semantic.DeepEqual(a.PodAnnotations, b.PodAnnotations)
}

// workloadImages lists the distinct images of every container.
func workloadImages(spec *corev1.PodSpec) []string {
	if spec == nil {
		return nil
	}
	var out []string
	add := func(img string) {
		if img != "" && !slices.Contains(out, img) {
			out = append(out, img)
		}
	}
	for _, c := range spec.InitContainers {
		add(c.Image)
	}
	for _, c := range spec.Containers {
		add(c.Image)
	}
	for _, c := range spec.EphemeralContainers {
		add(c.Image)
	}
	return out
}

func pullSecrets(spec *corev1.PodSpec) []string {
	if spec == nil {
		return nil
	}
	var out []string
	for _, s := range spec.ImagePullSecrets {
		if s.Name != "" {
			out = append(out, s.Name)
		}
	}
	return out
}

// Limits of an answer, each with its reason.
const (
	// maxWarnings and maxWarningBytes: the API server keeps at most 4 KiB
	// of warnings (it ignores the rest); a pod of a thousand containers
	// would otherwise answer megabytes. The event keeps every violation.
	maxWarnings     = 32
	maxWarningBytes = 4 << 10
	// maxDenial bounds a denial's message (kubectl prints it whole).
	maxDenial = 16 << 10
)

// response turns a decision into the webhook's answer: a denial names
// every blocking violation (policy, rule, control, field or finding);
// violations that do not block and waivers become warnings.
func response(dec policy.Decision) *admissionv1.AdmissionResponse {
	var resp *admissionv1.AdmissionResponse
	var warnings []string
	if dec.Action == model.ActionBlock {
		resp = deny(boundLines("mamori: "+dec.Message(), maxDenial))
		warnings = dec.Warnings()
	} else {
		resp = allow()
		for _, v := range dec.Violations {
			warnings = append(warnings, v.String())
		}
	}
	for _, v := range dec.Exempted {
		warnings = append(warnings, "waived: "+v.String())
	}
	resp.Warnings = boundWarnings(warnings)
	return resp
}

// boundWarnings makes warnings one printable line each (the API server
// drops a warning with a control character: it travels in an HTTP header)
// and keeps them within the API server's limits, saying how many were left out.
func boundWarnings(ws []string) []string {
	var out []string
	size := 0
	for i, w := range ws {
		w = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, w)
		if len(out) == maxWarnings-1 && len(ws) > maxWarnings || size+len(w) > maxWarningBytes-128 {
			out = append(out, fmt.Sprintf("mamori: %d more warnings (the admission event lists them all)", len(ws)-i))
			break
		}
		out = append(out, w)
		size += len(w)
	}
	return out
}

// boundLines cuts a message to whole lines within max bytes.
func boundLines(msg string, max int) string {
	if len(msg) <= max {
		return msg
	}
	lines := strings.Split(msg, "\n")
	var b strings.Builder
	for i, l := range lines {
		if b.Len()+len(l)+1 > max-80 {
			fmt.Fprintf(&b, "… and %d more violations (the admission event lists them all)", len(lines)-i)
			break
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// cacheKey identifies what a workload decision depends on: the policy
// version, the vulnerability database, the namespace and its labels, the
// pod template (spec, labels, annotations) and the data of each image
// (digest and scan). Pods of one ReplicaSet share it.
func (d *decider) cacheKey(p *Policy, w *policy.Workload, data imageData, sigs map[string]map[string]sigOutcome) (string, bool) {
	if len(data.unresolved) > 0 {
		return "", false
	}
	images := slices.Clone(data.keys)
	for ref, m := range sigs {
		for trust, o := range m {
			if o.incomplete {
				return "", false // decided again once the verification is done
			}
			images = append(images, "sig "+ref+"|"+trust+"="+o.key)
		}
	}
	k := struct {
		Policy  string
		Version int
		DB      time.Time
		Kind    string
		NS      string
		NSL     map[string]string
		PL      map[string]string
		PA      map[string]string
		Spec    *corev1.PodSpec
		Images  []string
	}{p.Digest, p.Version, data.db, w.Kind, w.Namespace, w.NamespaceLabels, w.PodLabels, w.PodAnnotations, w.Spec, images}
	sort.Strings(k.Images)
	b, err := json.Marshal(&k)
	if err != nil {
		return "", false
	}
	h := sha256.Sum256(b)
	return string(h[:]), true
}

// event is the admission event of a decision.
func (d *decider) event(req *admissionv1.AdmissionRequest, p *Policy, dec policy.Decision, resp *admissionv1.AdmissionResponse) model.Event {
	// The cluster is stamped by the server from the component's token.
	e := model.Event{ID: newID(), Time: d.now().UTC(), Source: model.SourceAdmission, Module: "webhook",
		Namespace: req.Namespace, Rule: model.RuleRef{Policy: p.Name, PolicyVersion: p.Version},
		Details: map[string]string{"operation": strings.ToLower(string(req.Operation)), "user": truncate(req.UserInfo.Username, 256),
			"uid": string(req.UID)}}
	first := firstDeciding(dec)
	e.Rule.ID = first.Rule
	if first.Rule == "" && len(dec.Exempted) > 0 {
		e.Rule.ID = dec.Exempted[0].Rule
	}
	switch {
	case !resp.Allowed:
		e.Action, e.Severity = model.ActionBlock, model.SeverityHigh
		e.Message = truncate(resp.Result.Message, 8<<10)
	case dec.Action == model.ActionLog:
		e.Action, e.Severity = model.ActionAllow, model.SeverityLow
		e.Message = truncate("mamori: admitted with warnings: "+strings.Join(resp.Warnings, "\n"), 8<<10)
	default:
		e.Action, e.Severity = model.ActionAllow, model.SeverityNegligible
		e.Message = truncate("mamori: admitted: "+strings.Join(resp.Warnings, "\n"), 8<<10)
	}
	for i, v := range append(slices.Clone(dec.Violations), dec.Exempted...) {
		if i >= 32 {
			break
		}
		e.Details["violation."+strconv.Itoa(i+1)] = truncate(v.String(), 1024)
	}
	return e
}

// firstDeciding is the first violation carrying the decision's action.
func firstDeciding(dec policy.Decision) policy.Violation {
	for _, v := range dec.Violations {
		if v.Action == dec.Action {
			return v
		}
	}
	if len(dec.Violations) > 0 {
		return dec.Violations[0]
	}
	return policy.Violation{}
}

func (d *decider) workloadEvent(req *admissionv1.AdmissionRequest, w *policy.Workload, p *Policy, dec policy.Decision,
	resp *admissionv1.AdmissionResponse) model.Event {
	e := d.event(req, p, dec, resp)
	e.Namespace = w.Namespace
	e.Workload = &model.WorkloadRef{Kind: w.Kind, Name: w.Name}
	if w.Kind == "Pod" {
		e.Pod = w.Name
	}
	if w.Name == "" { // a pod made with generateName
		e.Workload = nil
	}
	if dryRun(req) {
		e.Details["dryRun"] = "true"
	}
	first := firstDeciding(dec)
	if first.Container != "" || first.Image != "" {
		e.Container = &model.ContainerRef{Name: first.Container, Image: first.Image}
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
