// Package compliance assesses mamori's evidence against NIST SP 800-190
// (Application Container Security Guide, September 2017) and against the
// CIS Docker image items and CIS Kubernetes items mamori reads, each as a
// standard in one report format.
//
// The package is pure: the control catalogue (NIST800190, CISDocker,
// CISKubernetes), the evidence model the server gathers (Evidence), the
// assessors that decide each control from that evidence (Assess), and the
// report with its renderers (JSON, HTML, PDF). It does no I/O of its own:
// the server's compliance service reads the store, the cluster component
// and the agent collect postures with the engines below this folder
// (compliance/node, compliance/kube, compliance/registry), and send them
// through the API client.
//
// A control passes only with at least one evidence object behind it and
// no failing one; where the component that produces its evidence has not
// reported, it is "not assessed" with the reason, never "pass".
package compliance
