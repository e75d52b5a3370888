package policy

import (
	corev1 "k8s.io/api/core/v1"

	"mamori/internal/model"
)

// Subject is what a policy decides about: *Image, *Workload, *Access or
// *RuntimeHit.
type Subject interface{ isSubject() }

// Image is one image's scan result, as the CI gate and registry scans see
// it. Admission rules whose criteria are about images (scan results,
// registries, tags, digests, CEL over images only) apply to it.
type Image struct {
	// Ref is the image reference; empty means Result.Target.Name.
	Ref    string
	Result *model.Result
	// Signatures are the image's signature verifications, by
	// SignatureRequirement.Trust (see ImageScan.Signatures).
	Signatures map[string]SignatureCheck
}

// ImageScan is what is known about one image of a workload.
type ImageScan struct {
	// Result is the image's latest scan; nil when there is none.
	Result *model.Result
	// ScanError is set when an inline scan was tried and failed
	// (UnknownImages scan): OnScanFailure then decides.
	ScanError string
	// Signatures are the verifications of the image's signatures against
	// the keys and identities of each signature rule covering it, keyed by
	// the rule's SignatureRequirement.Trust. A covered image without an
	// entry was not verified: the rule counts it as unsigned.
	Signatures map[string]SignatureCheck
}

// SignatureCheck is one verification of an image's signatures (made at
// the edge with internal/sign).
type SignatureCheck struct {
	Verified bool
	// Signer names what verified ("key:sha256:…", "identity:subject@issuer").
	Signer string
	// Reason says why the verification failed.
	Reason string
}

// Workload is a Kubernetes object that runs pods: a Pod or a pod controller
// (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
// ReplicationController), with its pod template extracted. DecodeWorkload
// and WorkloadOf build one from an object.
type Workload struct {
	Kind       string
	APIVersion string
	Name       string
	Namespace  string
	// Labels and Annotations are the object's own.
	Labels      map[string]string
	Annotations map[string]string
	// PodLabels and PodAnnotations are the pod's: the object's for a Pod,
	// the pod template's for a controller. Selectors match PodLabels.
	PodLabels      map[string]string
	PodAnnotations map[string]string
	// Spec is the pod spec (the template's for a controller).
	Spec *corev1.PodSpec
	// SpecPath is the field path of Spec in the object ("spec",
	// "spec.template.spec", "spec.jobTemplate.spec.template.spec"); violation
	// field paths start with it.
	SpecPath string
	// PodMetaPath is the field path of the pod's metadata ("metadata",
	// "spec.template.metadata").
	PodMetaPath string

	// NamespaceLabels and NamespaceAnnotations are the namespace object's.
	NamespaceLabels      map[string]string
	NamespaceAnnotations map[string]string

	// Images holds the scan of each image, keyed by the reference exactly as
	// the containers write it. An image without an entry was never scanned.
	Images map[string]ImageScan

	// Running says the workload already runs (continuous compliance):
	// compliance rules apply. Otherwise it is being admitted: admission
	// rules apply.
	Running bool

	// Object is the whole object as decoded JSON, for CEL rules. When nil,
	// it is derived from what the workload was built from, once per
	// evaluation that needs it.
	Object map[string]any
	// raw is the JSON the workload was decoded from (DecodeWorkload).
	raw []byte
	// typed is the object the workload was built from (WorkloadOf).
	typed any
}

// Access is a request to exec into, attach to or port-forward to a pod.
type Access struct {
	// Operation is exec, attach or portforward.
	Operation string
	Namespace string
	Pod       string
	Container string
	Command   []string
	User      string
	Groups    []string
	// PodLabels and NamespaceLabels, when known, let selectors and
	// exceptions apply.
	PodLabels       map[string]string
	NamespaceLabels map[string]string
}

// Access operations.
const (
	OpExec        = "exec"
	OpAttach      = "attach"
	OpPortForward = "portforward"
)

// RuntimeHit is a runtime rule that matched an event (internal/runtime/rules
// found it, in a ruleset the policy put in force, with the action the
// engine chose). The policy applies its exceptions: a waived hit is allowed,
// with the exception's name and reason in Decision.Exempted.
type RuntimeHit struct {
	Ruleset string
	Rule    string
	// Action is the engine's action for the match; empty means log.
	Action model.Action
	// Namespace, PodLabels and Image locate the container; all empty for a
	// process outside Kubernetes.
	Namespace string
	PodLabels map[string]string
	Image     string
}

func (*Image) isSubject()      {}
func (*Workload) isSubject()   {}
func (*Access) isSubject()     {}
func (*RuntimeHit) isSubject() {}
