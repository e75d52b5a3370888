package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHugeObject: a 3 MiB pod (the API server's request limit) with
// thousands of containers and env vars evaluates in bounded time, CEL rules
// over it included.
func TestHugeObject(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"huge","labels":{"team":"x"}},"spec":{"containers":[`)
	for i := 0; b.Len() < 3<<20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"c%d","image":"registry.example.com/img%d:1","securityContext":{"privileged":%v},"env":[`, i, i%50, i%2 == 0)
		for j := 0; j < 20; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"V%d","value":"%s"}`, j, strings.Repeat("x", 40))
		}
		b.WriteString("]}")
	}
	b.WriteString("]}}")
	w, err := DecodeWorkload([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	ev := fuzzPolicy(t)
	start := time.Now()
	d := ev.Evaluate(w, testNow)
	took := time.Since(start)
	if len(d.Violations) < len(w.Spec.Containers)/2 || d.Action != "block" {
		t.Errorf("%d containers: %d violations, action %s", len(w.Spec.Containers), len(d.Violations), d.Action)
	}
	// Generous for a shared CI machine; it takes tens of milliseconds.
	if took > 10*time.Second {
		t.Errorf("evaluation of a 3 MiB pod took %v", took)
	}
	t.Logf("%d containers, %d bytes: %d violations in %v", len(w.Spec.Containers), b.Len(), len(d.Violations), took)
}

// TestDeepObject: nesting beyond what the JSON decoder accepts is refused at
// decode; deep nesting it accepts (in an annotation-like free-form field)
// evaluates, CEL included.
func TestDeepObject(t *testing.T) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	if _, err := DecodeWorkload([]byte(`{"kind":"Pod","spec":{"containers":[]},"x":` + deep + `}`)); err == nil {
		t.Error("20,000 levels of nesting accepted")
	}
	// CRD-like free-form fields are not part of the typed pod, but the CEL
	// object carries them.
	nested := strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000)
	w, err := DecodeWorkload([]byte(`{"kind":"Pod","metadata":{"name":"d"},"spec":{"containers":[{"name":"a","image":"x"}]},"extra":` + nested + `}`))
	if err != nil {
		t.Fatal(err)
	}
	ev := mustCompile(t, policyDoc("  - {name: c, action: block, cel: 'has(object.extra.a.a.a.a.a)'}\n"))
	d := ev.Evaluate(w, testNow)
	if d.Action != "block" || len(fieldsOf(d, CtlCEL)) != 1 {
		t.Errorf("decision %s %v", d.Action, d.Violations)
	}
}

// TestHugeCELInput: a CEL rule over vulnerabilities far larger than the
// declared bounds (4 KiB IDs) is stopped by the runtime cost limit: the
// rule fails closed instead of running on.
func TestHugeCELInput(t *testing.T) {
	ev := mustCompile(t, policyDoc("  - {name: c, action: block, cel: 'vulnerabilities.exists(v, v.id.contains(\"zzzzzzzzzz\"))'}\n"))
	w := workload(t, twoImages)
	res := benchResult(5000)
	for i := range res.Vulnerabilities {
		res.Vulnerabilities[i].ID = strings.Repeat("CVE", 1400) + fmt.Sprint(i)
	}
	w.Images = map[string]ImageScan{"registry.example.com/shop/web:1.2": {Result: res}}
	start := time.Now()
	d := ev.Evaluate(w, testNow)
	if d.Action != "block" || !strings.Contains(d.Message(), "could not be evaluated") || !strings.Contains(d.Message(), "cost limit") {
		t.Errorf("decision %s %s", d.Action, d.Message())
	}
	t.Logf("stopped after %v: %s", time.Since(start), d.Message())
}
