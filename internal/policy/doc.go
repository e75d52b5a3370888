// Package policy is mamori's one policy engine: the CI gate, registry scans,
// Kubernetes admission, continuous compliance and the runtime agent all
// decide with it.
//
// A Policy is data (YAML, docs/policies.md): admission rules, continuous-
// compliance rules, references to runtime rulesets, the handling of images
// that were never scanned, and exceptions. Parse reads one from bytes with
// errors that name the file and line; Compile turns it into an Evaluator
// once (CEL expressions compiled and cost-checked, globs and selectors
// prepared); Evaluator.Evaluate decides about one Subject:
//
//	p, err := policy.Parse("policy.yaml", data)
//	ev, err := policy.Compile(p)
//	d := ev.Evaluate(&policy.Workload{...}, now)
//	if d.Action == model.ActionBlock { deny(d.Message()) }
//
// Evaluation is pure: no I/O, no clock (the caller passes the time), no
// global state, and the subject is never modified. An Evaluator is safe for
// concurrent use.
//
// Subjects are an image's scan result (Image), a Kubernetes workload with its
// pod template, namespace and its images' scan results (Workload), a pod
// exec/attach/portforward request (Access) and a runtime rule match
// (RuntimeHit; the runtime rules themselves live in internal/runtime/rules,
// a policy only references rulesets by name and chooses their actions).
package policy
