package policy

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"mamori/internal/model"
)

// Validate checks a policy without compiling its CEL expressions (Compile
// does that). Policies from Parse are already validated; Validate is for
// policies built in code or decoded elsewhere.
func (p *Policy) Validate() error {
	var errs Errors
	add := func(e *Error) { errs = append(errs, e) }
	if p.APIVersion != APIVersion {
		add(p.errAt(fmt.Sprintf("apiVersion %q: want %q", p.APIVersion, APIVersion), "apiVersion"))
	}
	if p.Kind != Kind {
		add(p.errAt(fmt.Sprintf("kind %q: want %q", p.Kind, Kind), "kind"))
	}
	if err := checkName(p.Name); err != nil {
		add(p.errAt("name: "+err.Error(), "name"))
	}
	switch p.UnknownImages.Action {
	case "", UnknownScan, UnknownAllow, UnknownBlock:
	default:
		add(p.errAt(fmt.Sprintf("unknown action %q (want scan, allow or block)", p.UnknownImages.Action), "unknownImages", "action"))
	}
	switch p.UnknownImages.OnScanFailure {
	case "":
	case UnknownAllow, UnknownBlock:
		if p.UnknownImages.Action != UnknownScan {
			add(p.errAt("onScanFailure applies only to action scan", "unknownImages", "onScanFailure"))
		}
	default:
		add(p.errAt(fmt.Sprintf("unknown value %q (want allow or block)", p.UnknownImages.OnScanFailure), "unknownImages", "onScanFailure"))
	}
	names := map[string]bool{}
	for i := range p.Admission {
		p.validateRule(&p.Admission[i], "admission", i, names, add)
	}
	names = map[string]bool{}
	for i := range p.Compliance {
		p.validateRule(&p.Compliance[i], "compliance", i, names, add)
	}
	for i := range p.Runtime {
		p.validateRuleset(&p.Runtime[i], i, add)
	}
	exNames := map[string]bool{}
	for i := range p.Exceptions {
		p.validateException(&p.Exceptions[i], i, exNames, add)
	}
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs
}

// checkName accepts Kubernetes-style names: lower-case letters, digits,
// '-', '.', '_', at most 253 characters, starting and ending alphanumeric.
func checkName(n string) error {
	if n == "" {
		return fmt.Errorf("is empty")
	}
	if len(n) > 253 {
		return fmt.Errorf("longer than 253 characters")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && c != '-' && c != '.' && c != '_' {
			return fmt.Errorf("%q: use lower-case letters, digits, '-', '.' and '_'", n)
		}
		if (i == 0 || i == len(n)-1) && !alnum {
			return fmt.Errorf("%q must start and end with a letter or digit", n)
		}
	}
	return nil
}

// Criterion names the criterion a rule sets, by its YAML key ("podSecurity",
// "vulnerabilities", "cel"); "" when it sets none or several.
func (c *Criteria) Criterion() string {
	name, _ := c.criterion()
	return name
}

// criterion names the one criterion a rule sets; "" when it sets none or
// several (set lists them).
func (c *Criteria) criterion() (name string, set []string) {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := v.Field(i)
		if f.IsZero() {
			continue
		}
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		set = append(set, tag)
	}
	if len(set) == 1 {
		return set[0], set
	}
	return "", set
}

var admissionActions = []model.Action{model.ActionLog, model.ActionBlock}
var runningActions = []model.Action{model.ActionLog, model.ActionIsolate, model.ActionTerminate}

func actionList(as []model.Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

func (p *Policy) validateRule(r *Rule, section string, i int, names map[string]bool, add func(*Error)) {
	at := func(path ...any) []any { return append([]any{section, i}, path...) }
	if err := checkName(r.Name); err != nil {
		add(p.errAt("name: "+err.Error(), at("name")...))
	} else if names[r.Name] {
		add(p.errAt(fmt.Sprintf("rule name %q used twice in %s", r.Name, section), at("name")...))
	}
	names[r.Name] = true
	allowed := admissionActions
	if section == "compliance" {
		allowed = runningActions
	}
	if !slices.Contains(allowed, r.Action) {
		add(p.errAt(fmt.Sprintf("action %q: a %s rule's action is one of %s", r.Action, section, actionList(allowed)), at("action")...))
	}
	if r.Match != nil {
		p.validateMatch(r.Match, at("match"), add)
	}
	name, set := r.criterion()
	switch {
	case len(set) == 0:
		if key := p.nullCriterion(at()...); key != "" {
			add(p.errAt(key+" has no value: switch a check on with true or {}", at(key)...))
			return
		}
		add(p.errAt("the rule has no criterion (podSecurity, privileged, vulnerabilities, cel, ...: docs/policies.md)", at()...))
		return
	case len(set) > 1:
		add(p.errAt("one criterion per rule, this one has "+strings.Join(set, ", ")+": split it into rules", at()...))
		return
	}
	crit := func(msg string, path ...any) { add(p.errAt(msg, at(append([]any{name}, path...)...)...)) }
	c := &r.Criteria
	switch {
	case c.PodSecurity != nil:
		ps := c.PodSecurity
		all := levelControls(ps.Level)
		if all == nil {
			crit(fmt.Sprintf("level %q: want baseline or restricted", ps.Level), "level")
		}
		for j, x := range ps.Exclude {
			if all != nil && !slices.Contains(all, x) {
				crit(fmt.Sprintf("%q is not a control of level %s (%s)", x, ps.Level, strings.Join(all, ", ")), "exclude", j)
			}
		}
	case c.Capabilities != nil:
		checkCaps(c.Capabilities.AllowedAdd, crit)
	case c.CapabilitiesRestricted != nil:
		checkCaps(c.CapabilitiesRestricted.AllowedAdd, crit)
	case c.HostPath != nil:
		for j, d := range c.HostPath.AllowedPaths {
			if !strings.HasPrefix(d, "/") {
				crit(fmt.Sprintf("%q: allowed paths are absolute", d), "allowedPaths", j)
			}
		}
	case c.HostPorts != nil:
		for j, port := range c.HostPorts.Allowed {
			if port < 1 || port > 65535 {
				crit(fmt.Sprintf("port %d out of range 1-65535", port), "allowed", j)
			}
		}
	case c.Volumes != nil:
		for j, t := range c.Volumes.Allowed {
			if !slices.Contains(volumeTypeNames, t) {
				crit(fmt.Sprintf("unknown volume type %q", t), "allowed", j)
			}
		}
	case c.Resources != nil:
		if len(c.Resources.Limits) == 0 && len(c.Resources.Requests) == 0 {
			crit("name the limits and/or requests to require (cpu, memory, ephemeral-storage ...)")
		}
		for j, x := range append(slices.Clone(c.Resources.Limits), c.Resources.Requests...) {
			if x == "" {
				crit("empty resource name", j)
			}
		}
	case c.Registries != nil:
		if len(c.Registries.Allow) == 0 && len(c.Registries.Deny) == 0 {
			crit("give allow and/or deny")
		}
		for j, x := range c.Registries.Allow {
			if x == "" {
				crit("empty entry", "allow", j)
			}
		}
		for j, x := range c.Registries.Deny {
			if x == "" {
				crit("empty entry", "deny", j)
			}
		}
	case c.Signatures != nil:
		checkSignatures(c.Signatures, crit)
	case c.ImagePullPolicy != nil:
		if len(c.ImagePullPolicy.Allowed) == 0 {
			crit("allowed is empty (Always, IfNotPresent, Never)", "allowed")
		}
		for j, x := range c.ImagePullPolicy.Allowed {
			if !slices.Contains(pullPolicies, x) {
				crit(fmt.Sprintf("unknown pull policy %q (Always, IfNotPresent, Never)", x), "allowed", j)
			}
		}
	case c.PodAccess != nil:
		if section != "admission" {
			crit("podAccess is an admission rule: exec, attach and port-forward are requests")
		}
		for j, x := range c.PodAccess.Operations {
			if x != OpExec && x != OpAttach && x != OpPortForward {
				crit(fmt.Sprintf("unknown operation %q (exec, attach, portforward)", x), "operations", j)
			}
		}
	case c.Vulnerabilities != nil:
		v := c.Vulnerabilities
		if v.Severity != "" {
			if _, err := model.ParseSeverity(v.Severity); err != nil {
				crit(fmt.Sprintf("severity %q: want critical, high, medium, low, negligible or unknown", v.Severity), "severity")
			}
		}
		if v.CVSS < 0 || v.CVSS > 10 {
			crit(fmt.Sprintf("cvss %v out of range 0-10", v.CVSS), "cvss")
		}
		if v.PublishedDaysAgo < 0 {
			crit("publishedDaysAgo is negative", "publishedDaysAgo")
		}
	case c.Malware != nil:
		checkFindings(c.Malware, crit)
	case c.Secrets != nil:
		checkFindings(c.Secrets, crit)
	case c.Misconfigurations != nil:
		checkFindings(c.Misconfigurations, crit)
	case c.ScanAge != nil:
		if c.ScanAge.MaxHours <= 0 {
			crit("maxHours must be positive", "maxHours")
		}
	case c.CEL != "":
		if strings.TrimSpace(c.CEL) == "" {
			crit("empty expression")
		}
	}
}

func checkCaps(caps []string, crit func(string, ...any)) {
	for j, x := range caps {
		if x == "" || x != strings.ToUpper(x) || strings.HasPrefix(x, "CAP_") {
			crit(fmt.Sprintf("capability %q: write it as Kubernetes does, upper case without CAP_ (NET_BIND_SERVICE)", x), "allowedAdd", j)
		}
	}
}

func checkFindings(f *Findings, crit func(string, ...any)) {
	if f.Severity != "" {
		if _, err := model.ParseSeverity(f.Severity); err != nil {
			crit(fmt.Sprintf("severity %q: want critical, high, medium, low, negligible or unknown", f.Severity), "severity")
		}
	}
}

func (p *Policy) validateMatch(m *Match, at []any, add func(*Error)) {
	path := func(x ...any) []any { return append(slices.Clone(at), x...) }
	if err := checkSelector(m.Selector); err != nil {
		add(p.errAt(err.Error(), path("selector")...))
	}
	if err := checkSelector(m.NamespaceSelector); err != nil {
		add(p.errAt(err.Error(), path("namespaceSelector")...))
	}
	for j, k := range m.Kinds {
		if !slices.Contains(WorkloadKinds, k) {
			add(p.errAt(fmt.Sprintf("kind %q is not a workload kind (%s)", k, strings.Join(WorkloadKinds, ", ")), path("kinds", j)...))
		}
	}
}

func (p *Policy) validateRuleset(r *RulesetRef, i int, add func(*Error)) {
	if r.Ruleset == "" {
		add(p.errAt("ruleset: name the runtime ruleset", "runtime", i))
	}
	if r.Action != "" && !slices.Contains(runningActions, r.Action) {
		add(p.errAt(fmt.Sprintf("action %q: a runtime rule's action is one of %s", r.Action, actionList(runningActions)), "runtime", i, "action"))
	}
	keys := make([]string, 0, len(r.Rules))
	for k := range r.Rules {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" {
			add(p.errAt("empty rule ID", "runtime", i, "rules"))
		}
		if a := r.Rules[k]; !slices.Contains(runningActions, a) {
			add(p.errAt(fmt.Sprintf("rule %q: action %q: want one of %s", k, a, actionList(runningActions)), "runtime", i, "rules", k))
		}
	}
	if m := r.Match; m != nil {
		p.validateMatch(m, []any{"runtime", i, "match"}, add)
		if len(m.ExcludeNamespaces) > 0 || m.NamespaceSelector != nil || len(m.Kinds) > 0 {
			add(p.errAt("a runtime ruleset is selected by namespaces and selector only (the agent's engine selects containers by them)", "runtime", i, "match"))
		}
		for j, ns := range m.Namespaces {
			if strings.ContainsAny(ns, "*?") {
				add(p.errAt(fmt.Sprintf("namespace %q: runtime rulesets name namespaces exactly", ns), "runtime", i, "match", "namespaces", j))
			}
		}
	}
}

func (p *Policy) validateException(x *Exception, i int, names map[string]bool, add func(*Error)) {
	at := func(path ...any) []any { return append([]any{"exceptions", i}, path...) }
	if err := checkName(x.Name); err != nil {
		add(p.errAt("name: "+err.Error(), at("name")...))
	} else if names[x.Name] {
		add(p.errAt(fmt.Sprintf("exception name %q used twice", x.Name), at("name")...))
	}
	names[x.Name] = true
	if strings.TrimSpace(x.Reason) == "" {
		add(p.errAt("reason: every exception says why it is acceptable", at()...))
	}
	if x.Expires != "" {
		if _, err := parseExpiry(x.Expires); err != nil {
			add(p.errAt(err.Error(), at("expires")...))
		}
	}
	if len(x.Namespaces) == 0 && x.Selector == nil && len(x.Images) == 0 && len(x.Vulnerabilities) == 0 && len(x.Rules) == 0 {
		add(p.errAt("an exception needs a scope: rules, namespaces, selector, images or vulnerabilities", at()...))
	}
	if err := checkSelector(x.Selector); err != nil {
		add(p.errAt(err.Error(), at("selector")...))
	}
}

// parseExpiry reads a date (the exception holds through that day, UTC) or
// an RFC 3339 time; it returns the first instant the exception no longer
// holds.
func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.AddDate(0, 0, 1), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("expires %q: want a date (2026-12-31) or an RFC 3339 time", s)
}

// nullCriterion finds a criterion key written without a value
// (`privileged:`), which YAML reads as absent.
func (p *Policy) nullCriterion(path ...any) string {
	n := p.src.node(path...)
	if n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" && k != "name" && k != "action" && k != "description" && k != "match" {
			return k
		}
	}
	return ""
}

// ExceptionExpiry is the first instant an exception no longer holds; ok is
// false when it never expires (or its expiry does not parse: Parse refuses
// such a document).
func ExceptionExpiry(x Exception) (time.Time, bool) {
	if x.Expires == "" {
		return time.Time{}, false
	}
	t, err := parseExpiry(x.Expires)
	return t, err == nil
}
