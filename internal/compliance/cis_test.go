package compliance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"mamori/internal/compliance/posture"
	"mamori/internal/model"
)

// cisEvidence is an estate on which every automated CIS item passes.
func cisEvidence() *Evidence {
	e := goodEvidence()
	e.Images[0].Findings, e.Images[1].Findings = nil, nil
	c := &e.Clusters[0]
	c.Anonymous = append(c.Anonymous, posture.Item{ID: "CIS-K8s-1.2.1", Status: posture.Pass, Actual: "401"})
	for _, cc := range CISKubernetes() {
		switch cc.Group {
		case GroupCISControlPlane:
			c.APIServer = append(c.APIServer, posture.Item{ID: cc.ID, Title: cc.Title, Status: posture.Pass, Actual: "set"})
		case GroupCISWorkerNodes:
			if !slices.ContainsFunc(e.Nodes[0].Kubelet, func(it posture.Item) bool { return it.ID == cc.ID }) {
				e.Nodes[0].Kubelet = append(e.Nodes[0].Kubelet, posture.Item{ID: cc.ID, Title: cc.Title, Status: posture.Pass})
			}
		}
	}
	return e
}

var cisViolations = map[string]func(e *Evidence){
	"CIS-Docker-4.1": func(e *Evidence) {
		e.Images[0].Findings = append(e.Images[0].Findings, misconfig("MSC-IMG-001", "CIS-Docker-4.1"))
	},
	"CIS-Docker-4.3": func(e *Evidence) {
		e.Images[0].Findings = append(e.Images[0].Findings, misconfig("MSC-IMG-006", "CIS-Docker-4.3"))
	},
	"CIS-Docker-4.4": func(e *Evidence) { e.Images[1].BuiltAt = testNow.Add(-200 * 24 * time.Hour) },
	"CIS-Docker-4.5": func(e *Evidence) {
		e.Images[0].Signature = &SignatureEvidence{Required: true, Reason: "no signature found"}
	},
	"CIS-Docker-4.6": func(e *Evidence) {
		e.Images[0].Findings = append(e.Images[0].Findings, misconfig("MSC-IMG-002", "CIS-Docker-4.6"))
	},
	"CIS-Docker-4.7": func(e *Evidence) {
		e.Images[0].Findings = append(e.Images[0].Findings, misconfig("MSC-IMG-003", "CIS-Docker-4.7"))
	},
	"CIS-Docker-4.8": func(e *Evidence) {
		e.Images[0].Findings = append(e.Images[0].Findings, misconfig("MSC-FS-001", "CIS-Docker-4.8"))
	},
	"CIS-Docker-4.9": func(e *Evidence) {
		e.Images[0].Findings = append(e.Images[0].Findings, misconfig("MSC-IMG-004", "CIS-Docker-4.9"))
	},
	"CIS-Docker-4.10": func(e *Evidence) {
		e.Images[0].Findings = append(e.Images[0].Findings, FindingBrief{Kind: model.KindSecret, ID: "aws-access-key-id", Severity: model.SeverityCritical})
	},
	"CIS-K8s-5.1.1": func(e *Evidence) {
		e.Clusters[0].Bindings = append(e.Clusters[0].Bindings, posture.Binding{Kind: "ClusterRoleBinding", Name: "ci", Role: "ClusterRole/cluster-admin", Reason: "cluster-admin", Subjects: []string{"ServiceAccount:ci/x"}})
	},
	"CIS-K8s-5.1.3": func(e *Evidence) {
		e.Clusters[0].Bindings = append(e.Clusters[0].Bindings, posture.Binding{Kind: "RoleBinding", Namespace: "a", Name: "w", Role: "Role/all", Reason: "wildcard", Subjects: []string{"User:bob"}})
	},
	"CIS-K8s-5.3.2": func(e *Evidence) {
		e.Clusters[0].Namespaces = append(e.Clusters[0].Namespaces, posture.Namespace{Name: "open", Pods: 2})
	},
}

func misconfig(id, control string) FindingBrief {
	return FindingBrief{Kind: model.KindMisconfig, ID: id, Severity: model.SeverityLow, Controls: []string{control}}
}

// TestCISItemsFail is the named test of every automated CIS item: the
// good estate passes it, one violation fails exactly it.
func TestCISItemsFail(t *testing.T) {
	for _, std := range []string{StandardCISDocker, StandardCISKubernetes} {
		r, err := AssessStandard(std, cisEvidence(), Settings{}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Controls {
			if _, manual := cisManual[c.ID]; manual {
				if c.Status != StatusNotAssessed {
					t.Errorf("%s: manual item %s", c.ID, c.Status)
				}
				continue
			}
			if c.Status != StatusPass {
				t.Errorf("%s %s: %s (%s)", std, c.ID, c.Status, c.Reason)
			}
			t.Run(c.ID, func(t *testing.T) {
				e := cisEvidence()
				if f, ok := cisViolations[c.ID]; ok {
					f(e)
				} else {
					flipItem(t, e, c.Control)
				}
				r, _ := AssessStandard(std, e, Settings{}, testNow)
				if err := r.Validate(); err != nil {
					t.Fatal(err)
				}
				if got := failing(r); !slices.Equal(got, []string{c.ID}) {
					t.Fatalf("failing %v, want [%s]", got, c.ID)
				}
			})
		}
	}
}

// flipItem fails a posture item or adds a pod finding naming the item.
func flipItem(t *testing.T, e *Evidence, c Control) {
	flip := func(its []posture.Item) bool {
		for i := range its {
			if its[i].ID == c.ID {
				its[i].Status = posture.Fail
				return true
			}
		}
		return false
	}
	switch c.Group {
	case GroupCISControlPlane:
		if !flip(e.Clusters[0].APIServer) {
			t.Fatalf("no item %s", c.ID)
		}
	case GroupCISWorkerNodes:
		if !flip(e.Nodes[0].Kubelet) {
			t.Fatalf("no item %s", c.ID)
		}
	default:
		e.Clusters[0].Pods[0].Findings = append(e.Clusters[0].Pods[0].Findings,
			posture.Finding{ID: "MSC-K8S-X", Title: "x", Severity: model.SeverityLow, Controls: []string{c.ID}})
	}
}

func TestCISNothingReported(t *testing.T) {
	for _, std := range []string{StandardCISDocker, StandardCISKubernetes} {
		r, err := AssessStandard(std, &Evidence{}, Settings{}, testNow)
		if err != nil || r.Validate() != nil {
			t.Fatal(err, r.Validate())
		}
		for _, c := range r.Controls {
			if c.Status != StatusNotAssessed || !strings.HasPrefix(c.Reason, "not assessed: ") {
				t.Errorf("%s: %s %q", c.ID, c.Status, c.Reason)
			}
		}
	}
	if _, err := AssessStandard("pci", &Evidence{}, Settings{}, testNow); err == nil {
		t.Error("unknown standard accepted")
	}
}
