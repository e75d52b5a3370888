package compliance

import (
	"fmt"
	"io"
	"testing"

	"mamori/internal/compliance/posture"
	"mamori/internal/model"
)

// largeEvidence is an estate of n images and n/5 running pods on 50 nodes.
func largeEvidence(n int) *Evidence {
	e := goodEvidence()
	base := e.Images[0]
	for i := range n {
		im := base
		im.Ref = fmt.Sprintf("reg.example:5000/app/svc-%d:1", i)
		im.Digest = fmt.Sprintf("sha256:%064d", i)
		im.Vulnerabilities = make([]VulnSummary, 40)
		for k := range im.Vulnerabilities {
			im.Vulnerabilities[k] = VulnSummary{ID: fmt.Sprintf("CVE-%d", k), Package: "p", Severity: model.Severity(k % 5)}
		}
		e.Images = append(e.Images, im)
		if i%5 == 0 {
			e.Clusters[0].Pods = append(e.Clusters[0].Pods, posture.Pod{Namespace: "shop", Name: fmt.Sprintf("p%d", i),
				Node: fmt.Sprintf("n%d", i%50), Images: []posture.Image{{Container: "c", Image: im.Ref, Digest: im.Digest}}})
		}
	}
	return e
}

// BenchmarkAssess: the 23 controls over 5,000 images and 1,000 pods.
func BenchmarkAssess(b *testing.B) {
	e := largeEvidence(5000)
	b.ResetTimer()
	for b.Loop() {
		r := Assess(e, Settings{}, testNow)
		if r.Summary.Pass == 0 {
			b.Fatal("nothing passed")
		}
	}
}

// BenchmarkRender: the report of 5,000 images in each format.
func BenchmarkRender(b *testing.B) {
	r := Assess(largeEvidence(5000), Settings{}, testNow)
	for _, f := range []string{FormatJSON, FormatHTML, FormatPDF} {
		b.Run(f, func(b *testing.B) {
			for b.Loop() {
				if err := Render(io.Discard, r, f, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
