package policy

import (
	"context"
	"encoding/json"
	"strings"

	"mamori/internal/cel"
	"mamori/internal/model"
)

// CEL rules: a boolean expression that is true when the subject violates the
// rule, over the variables below (docs/policies.md). The environment is
// internal/cel's: static cost limit at load, runtime cost limit as a second
// fence, errors with file, line and column.

// CEL variable names.
const (
	varObject          = "object"
	varNamespaceObject = "namespaceObject"
	varImages          = "images"
	varVulnerabilities = "vulnerabilities"
	varFindings        = "findings"
)

// celVars are the declared inputs. The sizes bound the static cost
// estimate: they are generous for real pods (a few containers, images with
// up to a few thousand vulnerabilities) and tight enough that a nested loop
// over the whole object is refused at load.
func celVars() []cel.Var {
	return []cel.Var{
		{Name: varObject, Type: cel.Dyn, MaxSize: 64, ElemSize: 128,
			Doc: "the Kubernetes object (Pod or pod controller) as its JSON"},
		{Name: varNamespaceObject, Type: cel.Dyn, MaxSize: 8, ElemSize: 128,
			Doc: "the namespace: {metadata: {name, labels, annotations}}"},
		{Name: varImages, Type: cel.ListOf(cel.Dyn), MaxSize: 64, ElemSize: 128,
			Doc: "the workload's distinct images: name, registry, repository, tag, digest, containers, scanned, scannedAt, scanError, counts"},
		{Name: varVulnerabilities, Type: cel.ListOf(cel.Dyn), MaxSize: 4096, ElemSize: 128,
			Doc: "every vulnerability of every image: id, aliases, severity, severityLevel, cvss, fixable, fixedVersion, package, version, ecosystem, published, knownExploited, image"},
		{Name: varFindings, Type: cel.ListOf(cel.Dyn), MaxSize: 1024, ElemSize: 128,
			Doc: "every malware, secret and misconfiguration finding of every image: kind, id, severity, severityLevel, title, path, image"},
	}
}

// celRuntimeCostLimit is the fence during evaluation: real subjects can be
// larger than the declared sizes (an image with 10,000 vulnerabilities); an
// expression that reaches the limit fails (and the rule is violated).
const celRuntimeCostLimit = 10 * cel.DefaultCostLimit

func newCELEnv() (*cel.Env, error) {
	return cel.NewEnv(celVars(), cel.WithRuntimeCostLimit(celRuntimeCostLimit))
}

// celCheck is a compiled CEL rule.
type celCheck struct {
	prg *cel.Program
	// imageOnly: the expression reads only images, vulnerabilities and
	// findings, so it also applies to image subjects.
	imageOnly bool
	message   string
}

func newCELCheck(prg *cel.Program, message string) *celCheck {
	c := &celCheck{prg: prg, message: message, imageOnly: true}
	for _, v := range prg.Vars() {
		if v == varObject || v == varNamespaceObject {
			c.imageOnly = false
		}
	}
	return c
}

func (c *celCheck) eval(s *state) {
	ok, err := c.prg.EvalBool(context.Background(), s)
	if err != nil {
		// Fail closed: a rule that cannot be decided is broken, and says why.
		s.fail(CtlCEL, "", "", "", "expression could not be evaluated: "+err.Error())
		return
	}
	if ok {
		msg := c.message
		if msg == "" {
			msg = "expression is true: " + oneLine(c.prg.Source().Expr)
		}
		s.fail(CtlCEL, "", "", "", msg)
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// celInputs caches the CEL values of one subject for the rules of one
// evaluation.
type celInputs struct {
	object, namespace            map[string]any
	images, vulns, findings      []any
	haveObject, haveNS, haveImgs bool
	haveVulns, haveFindings      bool
}

func (c *celInputs) clear() { *c = celInputs{} }

// ResolveName makes the state a CEL activation; values are built on first
// use and kept for the evaluation.
func (s *state) ResolveName(name string) (any, bool) {
	c := &s.cel
	switch name {
	case varObject:
		if !c.haveObject {
			c.object, c.haveObject = s.objectMap(), true
		}
		return c.object, true
	case varNamespaceObject:
		if !c.haveNS {
			c.namespace, c.haveNS = s.namespaceMap(), true
		}
		return c.namespace, true
	case varImages:
		if !c.haveImgs {
			c.images, c.haveImgs = s.imageMaps(), true
		}
		return c.images, true
	case varVulnerabilities:
		if !c.haveVulns {
			c.vulns, c.haveVulns = s.vulnMaps(), true
		}
		return c.vulns, true
	case varFindings:
		if !c.haveFindings {
			c.findings, c.haveFindings = s.findingMaps(), true
		}
		return c.findings, true
	}
	return nil, false
}

// Parent implements cel.Activation.
func (s *state) Parent() cel.Activation { return nil }

var _ cel.Activation = (*state)(nil)

// objectMap is the workload's object as decoded JSON (integers as int64).
func (s *state) objectMap() map[string]any {
	w := s.w
	if w == nil {
		return map[string]any{}
	}
	if w.Object != nil {
		return w.Object
	}
	data := w.raw
	if data == nil && w.typed != nil {
		b, err := json.Marshal(w.typed)
		if err != nil {
			return map[string]any{}
		}
		data = b
	}
	var m map[string]any
	if data == nil || decodeJSONMap(data, &m) != nil || m == nil {
		m = map[string]any{}
	}
	if _, ok := m["kind"]; !ok && w.Kind != "" {
		m["kind"] = w.Kind
		m["apiVersion"] = w.APIVersion
	}
	return m
}

func (s *state) namespaceMap() map[string]any {
	meta := map[string]any{"name": s.sc.namespace}
	if s.w != nil {
		meta["labels"] = stringMap(s.w.NamespaceLabels)
		meta["annotations"] = stringMap(s.w.NamespaceAnnotations)
	} else {
		meta["labels"] = stringMap(s.sc.nsLabels)
		meta["annotations"] = map[string]any{}
	}
	return map[string]any{"metadata": meta}
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *state) imageMaps() []any {
	out := make([]any, 0, len(s.imgs))
	for i := range s.imgs {
		im := &s.imgs[i]
		m := map[string]any{
			"name":       im.ref.raw,
			"registry":   im.ref.registry,
			"repository": im.ref.repository,
			"tag":        im.ref.tag,
			"digest":     im.ref.digest,
			"containers": stringList(s.containersOf(im.ref.raw)),
			"scanned":    im.scan.Result != nil,
			"scanError":  im.scan.ScanError,
		}
		counts := map[string]any{"critical": int64(0), "high": int64(0), "medium": int64(0), "low": int64(0),
			"negligible": int64(0), "unknown": int64(0), "fixable": int64(0), "malware": int64(0), "secrets": int64(0),
			"misconfigurations": int64(0)}
		if r := im.scan.Result; r != nil {
			if !r.CreatedAt.IsZero() {
				m["scannedAt"] = r.CreatedAt
			}
			for j := range r.Vulnerabilities {
				v := &r.Vulnerabilities[j]
				k := strings.ToLower(v.Severity.String())
				counts[k] = counts[k].(int64) + 1
				if v.FixedVersion != "" {
					counts["fixable"] = counts["fixable"].(int64) + 1
				}
			}
			for j := range r.Findings {
				switch r.Findings[j].Kind {
				case model.KindMalware:
					counts["malware"] = counts["malware"].(int64) + 1
				case model.KindSecret:
					counts["secrets"] = counts["secrets"].(int64) + 1
				case model.KindMisconfig:
					counts["misconfigurations"] = counts["misconfigurations"].(int64) + 1
				}
			}
		}
		m["counts"] = counts
		out = append(out, m)
	}
	return out
}

func (s *state) vulnMaps() []any {
	var out []any
	for i := range s.imgs {
		im := &s.imgs[i]
		r := im.scan.Result
		if r == nil {
			continue
		}
		for j := range r.Vulnerabilities {
			v := &r.Vulnerabilities[j]
			m := map[string]any{
				"id":             v.ID,
				"aliases":        stringList(v.Aliases),
				"severity":       v.Severity.String(),
				"severityLevel":  int64(v.Severity),
				"cvss":           maxCVSS(v),
				"fixable":        v.FixedVersion != "",
				"fixedVersion":   v.FixedVersion,
				"package":        v.Package.Name,
				"version":        v.Package.Version,
				"ecosystem":      v.Package.Ecosystem,
				"knownExploited": knownExploited(v),
				"image":          im.ref.raw,
			}
			if !v.Published.IsZero() {
				m["published"] = v.Published
			}
			out = append(out, m)
		}
	}
	if out == nil {
		out = []any{}
	}
	return out
}

func (s *state) findingMaps() []any {
	out := []any{}
	for i := range s.imgs {
		im := &s.imgs[i]
		r := im.scan.Result
		if r == nil {
			continue
		}
		for j := range r.Findings {
			f := &r.Findings[j]
			out = append(out, map[string]any{
				"kind":          string(f.Kind),
				"id":            f.ID,
				"severity":      f.Severity.String(),
				"severityLevel": int64(f.Severity),
				"title":         f.Title,
				"path":          f.Location.Path,
				"image":         im.ref.raw,
			})
		}
	}
	return out
}

func stringList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
