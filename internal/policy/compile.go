package policy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"mamori/internal/cel"
	"mamori/internal/model"
)

// Compile validates p and turns it into an Evaluator: CEL expressions are
// compiled and cost-checked (an expression whose worst case exceeds the
// limit is refused here, never at evaluation), globs and selectors
// prepared. Errors name the file and line when p came from Parse.
func Compile(p *Policy) (*Evaluator, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	e := &Evaluator{
		name:      p.Name,
		unknown:   p.UnknownImages.Action,
		onFailure: p.UnknownImages.OnScanFailure,
	}
	if e.unknown == "" {
		e.unknown = UnknownAllow
	}
	if e.onFailure == "" {
		e.onFailure = UnknownAllow
	}
	for i := range p.Exceptions {
		x := &p.Exceptions[i]
		c := &exception{
			name: x.Name, reason: x.Reason,
			rules:      slices.Clone(x.Rules),
			namespaces: newGlobs(x.Namespaces),
			selector:   newSelector(x.Selector),
			images:     newGlobs(x.Images),
			vulns:      slices.Clone(x.Vulnerabilities),
		}
		if x.Expires != "" {
			c.expires, _ = parseExpiry(x.Expires) // validated
		}
		e.exceptions = append(e.exceptions, c)
	}
	var env *cel.Env
	var errs Errors
	compileRules := func(section string, rules []Rule) []*rule {
		out := make([]*rule, 0, len(rules))
		for i := range rules {
			r := &rules[i]
			cr := &rule{name: r.Name, action: r.Action, match: newMatcher(r.Match), exceptions: e.exceptionsFor(r.Name)}
			if r.CEL != "" {
				if env == nil {
					var err error
					if env, err = newCELEnv(); err != nil {
						errs = append(errs, &Error{Msg: fmt.Sprintf("CEL environment: %v", err)})
						continue
					}
				}
				prg, err := env.CompileBool(p.celSource(section, i, r.CEL))
				if err != nil {
					errs = append(errs, p.celErrors(err, section, i)...)
					continue
				}
				cr.cel = newCELCheck(prg, r.Description)
			} else {
				compileCriteria(&r.Criteria, cr)
				if r.Vulnerabilities != nil && r.Vulnerabilities.KnownExploited && !kevAvailable {
					e.warnings = append(e.warnings, fmt.Sprintf("%s rule %q: knownExploited: this build has no Known Exploited Vulnerabilities data yet (issue 15); the condition matches nothing", section, r.Name))
				}
			}
			out = append(out, cr)
		}
		return out
	}
	e.admission = compileRules("admission", p.Admission)
	e.compliance = compileRules("compliance", p.Compliance)
	if len(errs) > 0 {
		return nil, errs
	}
	for _, r := range p.Runtime {
		e.runtime = append(e.runtime, cloneRulesetRef(r))
	}
	e.unknownRule = &rule{name: "unknownImages", action: model.ActionLog, exceptions: e.exceptionsFor("unknownImages")}
	return e, nil
}

// exceptionsFor lists the exceptions that may waive a rule.
func (e *Evaluator) exceptionsFor(name string) []int {
	var out []int
	for i, x := range e.exceptions {
		if x.coversRule(name) {
			out = append(out, i)
		}
	}
	return out
}

// compileCriteria sets the checks of a typed criterion.
func compileCriteria(c *Criteria, r *rule) {
	r.dedup = true
	or := func(given, def []string) []string {
		if len(given) > 0 {
			return slices.Clone(given)
		}
		return def
	}
	switch {
	case c.PodSecurity != nil:
		for _, name := range levelControls(c.PodSecurity.Level) {
			if !slices.Contains(c.PodSecurity.Exclude, name) {
				r.pod = append(r.pod, controlFunc(name))
			}
		}
	case c.HostProcess != nil:
		r.pod = append(r.pod, ctlHostProcess)
	case c.HostNamespaces != nil:
		r.pod = append(r.pod, ctlHostNamespaces)
	case c.Privileged != nil:
		r.pod = append(r.pod, ctlPrivileged)
	case c.Capabilities != nil:
		r.pod = append(r.pod, ctlCapabilities(or(c.Capabilities.AllowedAdd, defaultCapabilities)))
	case c.HostPath != nil:
		r.pod = append(r.pod, ctlHostPath(slices.Clone(c.HostPath.AllowedPaths)))
	case c.HostPorts != nil:
		r.pod = append(r.pod, ctlHostPorts(slices.Clone(c.HostPorts.Allowed)))
	case c.HostProbes != nil:
		r.pod = append(r.pod, ctlHostProbes)
	case c.AppArmor != nil:
		r.pod = append(r.pod, ctlAppArmor)
	case c.SELinux != nil:
		r.pod = append(r.pod, ctlSELinux(or(c.SELinux.AllowedTypes, seLinuxTypes)))
	case c.ProcMount != nil:
		r.pod = append(r.pod, procMount(CtlProcMount, true))
	case c.Seccomp != nil:
		r.pod = append(r.pod, ctlSeccomp)
	case c.Sysctls != nil:
		r.pod = append(r.pod, ctlSysctls(or(c.Sysctls.Allowed, safeSysctls)))
	case c.Volumes != nil:
		r.pod = append(r.pod, ctlVolumeTypes(or(c.Volumes.Allowed, restrictedVolumeTypes)))
	case c.PrivilegeEscalation != nil:
		r.pod = append(r.pod, ctlPrivilegeEscalation)
	case c.RunAsNonRoot != nil:
		r.pod = append(r.pod, ctlRunAsNonRoot)
	case c.RunAsUser != nil:
		r.pod = append(r.pod, ctlRunAsUser)
	case c.SeccompRestricted != nil:
		r.pod = append(r.pod, ctlSeccompRestricted)
	case c.CapabilitiesRestricted != nil:
		r.pod = append(r.pod, ctlCapabilitiesRestricted(or(c.CapabilitiesRestricted.AllowedAdd, restrictedCapabilities)))
	case c.ProcMountRestricted != nil:
		r.pod = append(r.pod, procMount(CtlProcMountRestricted, false))
	case c.ReadOnlyRootFilesystem != nil:
		r.pod = append(r.pod, ctlReadOnlyRootFS)
	case c.Resources != nil:
		r.pod = append(r.pod, ctlResources(slices.Clone(c.Resources.Limits), slices.Clone(c.Resources.Requests)))
	case c.ImagePullPolicy != nil:
		r.pod = append(r.pod, ctlPullPolicy(slices.Clone(c.ImagePullPolicy.Allowed)))
	case c.AutomountServiceAccountToken != nil:
		r.pod = append(r.pod, ctlAutomountToken)
	case c.Registries != nil:
		r.image = newRegistryCheck(c.Registries).image
	case c.Signatures != nil:
		r.signatures = newSignatureRequirement(r.name, c.Signatures)
		r.image = r.signatures.image
	case c.LatestTag != nil:
		r.image = ctlLatestTag
	case c.RequireDigest != nil:
		r.image = ctlRequireDigest
	case c.PodAccess != nil:
		pa := &podAccessCheck{ops: slices.Clone(c.PodAccess.Operations), users: newGlobs(c.PodAccess.AllowUsers), groups: newGlobs(c.PodAccess.AllowGroups)}
		r.access = pa.access
	case c.Vulnerabilities != nil:
		r.image, r.dedup = newVulnCheck(c.Vulnerabilities).image, false
	case c.Malware != nil:
		r.image, r.dedup = newFindingCheck(CtlMalware, model.KindMalware, c.Malware).image, false
	case c.Secrets != nil:
		r.image, r.dedup = newFindingCheck(CtlSecrets, model.KindSecret, c.Secrets).image, false
	case c.Misconfigurations != nil:
		r.image, r.dedup = newFindingCheck(CtlMisconfig, model.KindMisconfig, c.Misconfigurations).image, false
	case c.NotScanned != nil:
		r.image = ctlNotScanned
	case c.ScanAge != nil:
		r.image = scanAge(time.Duration(c.ScanAge.MaxHours) * time.Hour)
	}
}

// controlFunc is a Pod Security Standards control with the standard's
// parameters.
func controlFunc(name string) func(*state) {
	switch name {
	case CtlHostProcess:
		return ctlHostProcess
	case CtlHostNamespaces:
		return ctlHostNamespaces
	case CtlPrivileged:
		return ctlPrivileged
	case CtlCapabilities:
		return ctlCapabilities(defaultCapabilities)
	case CtlHostPath:
		return ctlHostPath(nil)
	case CtlHostPorts:
		return ctlHostPorts(nil)
	case CtlHostProbes:
		return ctlHostProbes
	case CtlAppArmor:
		return ctlAppArmor
	case CtlSELinux:
		return ctlSELinux(seLinuxTypes)
	case CtlProcMount:
		return procMount(CtlProcMount, true)
	case CtlSeccomp:
		return ctlSeccomp
	case CtlSysctls:
		return ctlSysctls(safeSysctls)
	case CtlVolumeTypes:
		return ctlVolumeTypes(restrictedVolumeTypes)
	case CtlPrivilegeEscalation:
		return ctlPrivilegeEscalation
	case CtlRunAsNonRoot:
		return ctlRunAsNonRoot
	case CtlRunAsUser:
		return ctlRunAsUser
	case CtlSeccompRestricted:
		return ctlSeccompRestricted
	case CtlCapabilitiesRestricted:
		return ctlCapabilitiesRestricted(restrictedCapabilities)
	case CtlProcMountRestricted:
		return procMount(CtlProcMountRestricted, false)
	}
	return func(*state) {} // unreachable: names come from levelControls
}

// celSource is the CEL expression of a rule with its place in the file.
func (p *Policy) celSource(section string, i int, expr string) cel.Source {
	if p.src != nil {
		if n := p.src.node(section, i, "cel"); n != nil && n.Value == expr {
			return cel.YAMLSource(p.src.file, p.src.data, n)
		}
	}
	return cel.Source{Expr: expr}
}

// celErrors converts CEL compile errors to policy Errors.
func (p *Policy) celErrors(err error, section string, i int) Errors {
	path := pathString([]any{section, i, "cel"})
	var out Errors
	var list cel.Errors
	var one *cel.Error
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			out = append(out, p.celError(e, path))
		}
	case errors.As(err, &one):
		out = append(out, p.celError(one, path))
	default:
		e := p.errAt(err.Error(), section, i, "cel")
		out = append(out, e)
	}
	return out
}

func (p *Policy) celError(e *cel.Error, path string) *Error {
	out := &Error{File: e.File, Line: e.Line, Column: e.Column, Path: path, Msg: e.Msg}
	if errors.Is(e, cel.ErrTooExpensive) {
		out.Msg = "too expensive: " + e.Msg
	}
	if out.File == "" && p.src != nil {
		out.File = p.src.file
	}
	return out
}
