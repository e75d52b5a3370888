package policy

import (
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/json"

	"mamori/internal/model"
)

// Evaluator is a compiled policy. It is immutable and safe for concurrent
// use; Compile builds one.
type Evaluator struct {
	name       string
	unknown    string // UnknownScan, UnknownAllow or UnknownBlock
	onFailure  string // UnknownAllow or UnknownBlock
	admission  []*rule
	compliance []*rule
	runtime    []RulesetRef
	exceptions []*exception
	warnings   []string
	// unknownRule is the pseudo-rule unknown-image violations are reported under.
	unknownRule *rule
	states      sync.Pool // *state, reused between evaluations
}

// Name is the policy's name.
func (e *Evaluator) Name() string { return e.name }

// Warnings are things about the policy that load but deserve a look (a
// criterion that cannot match yet).
func (e *Evaluator) Warnings() []string { return slices.Clone(e.warnings) }

// UnknownImages is the policy's handling of images never scanned (scan,
// allow or block) and, for scan, what happens when the inline scan fails.
func (e *Evaluator) UnknownImages() (action, onScanFailure string) { return e.unknown, e.onFailure }

// rule is a compiled admission or compliance rule.
type rule struct {
	name   string
	action model.Action
	match  *matcher
	// Exactly one kind of check is set (podSecurity sets several pod checks).
	pod    []func(*state)
	image  func(*state, *imageInfo)
	access func(*state, *Access)
	cel    *celCheck
	// signatures is set for a signatures criterion (image is its check).
	signatures *SignatureRequirement
	// dedup: a field reported by an earlier rule of the same control family
	// is reported once, under the stronger action.
	dedup bool
	// exceptions are the indexes of the exceptions that may waive this rule.
	exceptions []int
}

// appliesToImages: the rule can judge an image subject.
func (r *rule) appliesToImages() bool {
	return r.image != nil || (r.cel != nil && r.cel.imageOnly)
}

// exception is a compiled exception.
type exception struct {
	name, reason string
	expires      time.Time // zero: never
	rules        []string
	namespaces   globs
	selector     *selector
	images       globs
	vulns        []string
}

// scoped: the exception depends on where the subject runs.
func (x *exception) scoped() bool { return x.namespaces != nil || x.selector != nil }

func (x *exception) inForce(at time.Time) bool { return x.expires.IsZero() || at.Before(x.expires) }

func (x *exception) coversRule(name string) bool {
	return len(x.rules) == 0 || slices.Contains(x.rules, name)
}

// coversImage matches the image globs against the reference as written and
// in its normalized forms ("nginx" is also "docker.io/library/nginx").
func (x *exception) coversImage(raw string) bool {
	if x.images == nil {
		return true
	}
	if raw == "" {
		return false
	}
	if x.images.any(raw) {
		return true
	}
	r := parseImageRef(raw)
	return x.images.any(r.full()) || x.images.any(r.name())
}

// imageInfo is one distinct image of a subject.
type imageInfo struct {
	ref       imageRef
	list      string // the first container using it
	idx       int
	container string
	scan      ImageScan
	// pending: never scanned, and the policy scans inline before deciding.
	pending bool
}

// state is one evaluation's scratch space, pooled.
type state struct {
	ev      *Evaluator
	at      time.Time
	dec     Decision
	d       *Decision // &dec
	r       *rule
	sc      scope
	w       *Workload
	spec    *corev1.PodSpec
	imgs    []imageInfo
	exIn    []bool           // exceptions in force and in scope for this subject
	seen    map[dedupKey]int // reported fields -> index in Violations
	cel     celInputs
	noSpec  corev1.PodSpec // stands in for a nil spec; never written
	imgBuf  [4]imageInfo
	vulnBuf [4]*exception
}

func (e *Evaluator) getState(at time.Time) *state {
	s, _ := e.states.Get().(*state)
	if s == nil {
		s = &state{ev: e}
	}
	s.at = at
	s.dec = Decision{Policy: e.name, Action: model.ActionAllow}
	s.d = &s.dec
	s.imgs = s.imgBuf[:0]
	if cap(s.exIn) < len(e.exceptions) {
		s.exIn = make([]bool, len(e.exceptions))
	}
	s.exIn = s.exIn[:len(e.exceptions)]
	return s
}

func (e *Evaluator) putState(s *state) {
	s.d, s.r, s.w, s.spec = nil, nil, nil, nil
	s.dec = Decision{} // the caller owns the returned decision's slices
	clear(s.seen)
	s.sc = scope{}
	clear(s.imgBuf[:])
	s.imgs = nil
	s.cel.clear()
	e.states.Put(s)
}

// Evaluate decides about one subject at time at (exception expiry, scan
// age and publication age are measured against it). It never modifies the
// subject and never fails: a rule that cannot be decided (a CEL error)
// counts as violated, with the reason in its message.
func (e *Evaluator) Evaluate(sub Subject, at time.Time) Decision {
	s := e.getState(at)
	defer e.putState(s)
	switch x := sub.(type) {
	case *Workload:
		if x != nil {
			s.evalWorkload(x)
		}
	case *Image:
		if x != nil {
			s.evalImage(x)
		}
	case *Access:
		if x != nil {
			s.evalAccess(x)
		}
	case *RuntimeHit:
		if x != nil {
			s.evalRuntime(x)
		}
	}
	return s.dec
}

func (s *state) evalWorkload(w *Workload) {
	s.w = w
	s.spec = w.Spec
	if s.spec == nil {
		s.spec = &s.noSpec
	}
	s.sc = scope{namespace: w.Namespace, kind: w.Kind, podLabels: w.PodLabels, nsLabels: w.NamespaceLabels}
	s.collectImages()
	s.scopeExceptions(true)
	rules := s.ev.admission
	if w.Running {
		rules = s.ev.compliance
	}
	for _, r := range rules {
		if r.access != nil || !r.match.matches(&s.sc) {
			continue
		}
		s.r = r
		for _, f := range r.pod {
			f(s)
		}
		if r.image != nil {
			for i := range s.imgs {
				r.image(s, &s.imgs[i])
			}
		}
		if r.cel != nil {
			r.cel.eval(s)
		}
	}
	s.unknownImages()
}

// collectImages lists the distinct images of the workload's containers, in
// container order, with what is known of their scans.
func (s *state) collectImages() {
	scanInline := s.ev.unknown == UnknownScan && !s.w.Running
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		for j := range s.imgs {
			if s.imgs[j].ref.raw == c.Image {
				return
			}
		}
		im := imageInfo{ref: parseImageRef(c.Image), list: list, idx: i, container: c.Name}
		im.scan = s.w.Images[c.Image]
		im.pending = im.scan.Result == nil && im.scan.ScanError == "" && scanInline
		s.imgs = append(s.imgs, im)
	})
}

// containersOf names the containers running image raw.
func (s *state) containersOf(raw string) []string {
	if s.spec == nil {
		return nil
	}
	var out []string
	eachContainer(s.spec, func(_ string, _ int, c *corev1.Container) {
		if c.Image == raw {
			out = append(out, c.Name)
		}
	})
	return out
}

// unknownImages applies the policy's handling of images without a scan.
func (s *state) unknownImages() {
	s.r = s.ev.unknownRule
	for i := range s.imgs {
		im := &s.imgs[i]
		if im.scan.Result != nil {
			continue
		}
		raw := im.ref.raw
		if s.w.Running {
			s.d.ScanAfter = append(s.d.ScanAfter, raw)
			continue
		}
		switch {
		case im.pending:
			s.d.NeedScan = append(s.d.NeedScan, raw)
		case im.scan.ScanError != "":
			v := s.violation(CtlUnknownImage, im, "image "+quote(raw)+" could not be scanned: "+im.scan.ScanError)
			v.Action = model.ActionLog
			if s.ev.onFailure == UnknownBlock {
				v.Action = model.ActionBlock
			} else {
				s.d.ScanAfter = append(s.d.ScanAfter, raw)
			}
			s.report(v)
		case s.ev.unknown == UnknownBlock:
			v := s.violation(CtlUnknownImage, im, "image "+quote(raw)+" was never scanned")
			v.Action = model.ActionBlock
			s.report(v)
		default: // UnknownAllow
			v := s.violation(CtlUnknownImage, im, "image "+quote(raw)+" was never scanned: admitted, to be scanned")
			v.Action = model.ActionLog
			s.d.ScanAfter = append(s.d.ScanAfter, raw)
			s.report(v)
		}
	}
}

func (s *state) evalImage(img *Image) {
	ref := img.Ref
	if ref == "" && img.Result != nil {
		ref = img.Result.Target.Name
		if len(img.Result.Target.RepoTags) > 0 {
			ref = img.Result.Target.RepoTags[0]
		}
	}
	s.imgs = append(s.imgs, imageInfo{ref: parseImageRef(ref), scan: ImageScan{Result: img.Result, Signatures: img.Signatures}})
	s.scopeExceptions(false)
	for _, r := range s.ev.admission {
		if !r.appliesToImages() {
			continue
		}
		s.r = r
		if r.image != nil {
			r.image(s, &s.imgs[0])
		}
		if r.cel != nil {
			r.cel.eval(s)
		}
	}
}

func (s *state) evalAccess(a *Access) {
	s.sc = scope{namespace: a.Namespace, kind: "Pod", podLabels: a.PodLabels, nsLabels: a.NamespaceLabels}
	s.scopeExceptions(true)
	for _, r := range s.ev.admission {
		if r.access == nil || !r.match.matches(&s.sc) {
			continue
		}
		s.r = r
		r.access(s, a)
	}
}

func (s *state) evalRuntime(h *RuntimeHit) {
	s.sc = scope{namespace: h.Namespace, podLabels: h.PodLabels}
	action := h.Action
	if action == "" {
		action = model.ActionLog
	}
	s.scopeExceptions(true)
	v := Violation{Policy: s.ev.name, Rule: h.Rule, Action: action, Control: CtlRuntime, Image: h.Image,
		Message: "runtime rule " + quote(h.Rule) + " of ruleset " + quote(h.Ruleset) + " matched"}
	for i, x := range s.ev.exceptions {
		if s.exIn[i] && len(x.vulns) == 0 && (x.coversRule(h.Rule) || x.coversRule(h.Ruleset)) && x.coversImage(h.Image) {
			v.Exception, v.Reason = x.name, x.reason
			s.d.Exempted = append(s.d.Exempted, v)
			return
		}
	}
	s.d.Violations = append(s.d.Violations, v)
	s.raise(action)
}

// Runtime returns the policy's runtime ruleset references (a copy), for the
// node agent to build its engine's rulesets from.
func (e *Evaluator) Runtime() []RulesetRef {
	out := make([]RulesetRef, len(e.runtime))
	for i, r := range e.runtime {
		out[i] = cloneRulesetRef(r)
	}
	return out
}

func cloneRulesetRef(r RulesetRef) RulesetRef {
	c := r
	if r.Match != nil {
		m := *r.Match
		m.Namespaces = slices.Clone(r.Match.Namespaces)
		if r.Match.Selector != nil {
			sel := *r.Match.Selector
			sel.MatchLabels = maps.Clone(r.Match.Selector.MatchLabels)
			sel.MatchExpressions = slices.Clone(r.Match.Selector.MatchExpressions)
			for i := range sel.MatchExpressions {
				sel.MatchExpressions[i].Values = slices.Clone(sel.MatchExpressions[i].Values)
			}
			m.Selector = &sel
		}
		c.Match = &m
	}
	if r.Host != nil {
		h := *r.Host
		c.Host = &h
	}
	c.Rules = maps.Clone(r.Rules)
	return c
}

// scopeExceptions decides which exceptions are in force and in scope for
// the subject. Exceptions scoped by namespace or labels never apply to a
// subject without a place (an image in CI).
func (s *state) scopeExceptions(placed bool) {
	for i, x := range s.ev.exceptions {
		in := x.inForce(s.at)
		if in && x.scoped() {
			in = placed && (x.namespaces == nil || x.namespaces.any(s.sc.namespace)) && x.selector.matches(s.sc.podLabels)
		}
		s.exIn[i] = in
	}
}

// violation starts a violation about an image of the subject.
func (s *state) violation(control string, im *imageInfo, msg string) Violation {
	v := Violation{Policy: s.ev.name, Rule: s.r.name, Action: s.r.action, Control: control,
		Container: im.container, Image: im.ref.raw, Message: msg}
	if s.w != nil && im.list != "" {
		v.Field = s.ctrField(im.list, im.idx, "image")
	}
	return v
}

func (s *state) fail(control, field, container, image, msg string) {
	s.report(Violation{Policy: s.ev.name, Rule: s.r.name, Action: s.r.action, Control: control,
		Field: field, Container: container, Image: image, Message: msg})
}

func (s *state) failImage(control string, im *imageInfo, msg string) {
	s.report(s.violation(control, im, msg))
}

func (s *state) reportImage(control string, im *imageInfo, ids idList, msg string) {
	v := s.violation(control, im, msg)
	v.Findings, v.Count = ids.ids, ids.count
	s.report(v)
}

// report records a violation, unless an exception waives it or an earlier
// rule already reported the same field of the same control family.
func (s *state) report(v Violation) {
	if x := s.exceptionFor(&v); x != nil {
		v.Exception, v.Reason = x.name, x.reason
		s.d.Exempted = append(s.d.Exempted, v)
		return
	}
	if s.r.dedup && v.Field != "" {
		k := dedupKey{family(v.Control), v.Field, v.Image}
		if i, ok := s.seen[k]; ok {
			if o := &s.d.Violations[i]; actionRank(v.Action) > actionRank(o.Action) {
				*o = v
				s.raise(v.Action)
			}
			return
		}
		if s.seen == nil {
			s.seen = make(map[dedupKey]int)
		}
		s.seen[k] = len(s.d.Violations)
	}
	s.d.Violations = append(s.d.Violations, v)
	s.raise(v.Action)
}

// dedupKey identifies a field reported by a control family.
type dedupKey struct{ family, field, image string }

func (s *state) raise(a model.Action) {
	if actionRank(a) > actionRank(s.d.Action) {
		s.d.Action = a
	}
}

// exceptionFor finds an exception that waives v wholesale (exceptions that
// name vulnerabilities waive only those, in the vulnerability check).
func (s *state) exceptionFor(v *Violation) *exception {
	for _, i := range s.r.exceptions {
		x := s.ev.exceptions[i]
		if !s.exIn[i] || len(x.vulns) > 0 {
			continue
		}
		if x.images != nil && !x.coversImage(v.Image) {
			continue
		}
		return x
	}
	return nil
}

// vulnExceptions are the exceptions naming vulnerabilities that apply to
// this rule and image.
func (s *state) vulnExceptions(im *imageInfo) []*exception {
	out := s.vulnBuf[:0]
	for _, i := range s.r.exceptions {
		x := s.ev.exceptions[i]
		if s.exIn[i] && len(x.vulns) > 0 && x.coversImage(im.ref.raw) {
			out = append(out, x)
		}
	}
	return out
}

func exceptionFor(xs []*exception, v *model.Vulnerability) *exception {
	for _, x := range xs {
		if namesVuln(x.vulns, v) {
			return x
		}
	}
	return nil
}

func decodeJSONMap(data []byte, m *map[string]any) error {
	return json.UnmarshalCaseSensitivePreserveInts(data, m)
}
