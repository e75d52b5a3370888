package policy

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/json"
)

// MaxObjectSize bounds an object given to DecodeWorkload. The API server
// refuses requests over 3 MiB; this leaves room for what a caller wraps.
const MaxObjectSize = 16 << 20

// ErrNotWorkload is returned for objects that do not run pods.
var ErrNotWorkload = errors.New("policy: not a workload")

// WorkloadKinds are the kinds a Workload can be built from.
var WorkloadKinds = []string{"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"}

// DecodeWorkload decodes a Kubernetes object from JSON (as the API server
// sends it in an AdmissionReview) and extracts its pod template. Field names
// are matched case-sensitively, as the API server does. The namespace is
// the object's metadata.namespace; admission callers set it from the
// request when the object has none.
func DecodeWorkload(data []byte) (*Workload, error) {
	if len(data) > MaxObjectSize {
		return nil, fmt.Errorf("policy: object of %d bytes exceeds %d", len(data), MaxObjectSize)
	}
	var tm metav1.TypeMeta
	if err := json.UnmarshalCaseSensitivePreserveInts(data, &tm); err != nil {
		return nil, fmt.Errorf("policy: decode object: %w", err)
	}
	var obj any
	switch tm.Kind {
	case "Pod":
		obj = &corev1.Pod{}
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "ReplicaSet":
		obj = &appsv1.ReplicaSet{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
	case "Job":
		obj = &batchv1.Job{}
	case "CronJob":
		obj = &batchv1.CronJob{}
	case "ReplicationController":
		obj = &corev1.ReplicationController{}
	default:
		return nil, fmt.Errorf("%w: kind %q", ErrNotWorkload, tm.Kind)
	}
	if err := json.UnmarshalCaseSensitivePreserveInts(data, obj); err != nil {
		return nil, fmt.Errorf("policy: decode %s: %w", tm.Kind, err)
	}
	w, err := WorkloadOf(obj)
	if err != nil {
		return nil, err
	}
	w.raw = data
	w.typed = nil
	return w, nil
}

// WorkloadOf builds a Workload from a typed object: *corev1.Pod,
// *appsv1.Deployment, *appsv1.ReplicaSet, *appsv1.StatefulSet,
// *appsv1.DaemonSet, *batchv1.Job, *batchv1.CronJob or
// *corev1.ReplicationController. The workload refers to the object's maps and
// spec; neither is modified by evaluation.
func WorkloadOf(obj any) (*Workload, error) {
	w := &Workload{typed: obj}
	var (
		meta *metav1.ObjectMeta
		tmpl *corev1.PodTemplateSpec
	)
	switch o := obj.(type) {
	case *corev1.Pod:
		if o == nil {
			return nil, fmt.Errorf("%w: nil Pod", ErrNotWorkload)
		}
		w.Kind, meta = "Pod", &o.ObjectMeta
		w.Spec, w.SpecPath, w.PodMetaPath = &o.Spec, "spec", "metadata"
		w.PodLabels, w.PodAnnotations = o.Labels, o.Annotations
	case *appsv1.Deployment:
		if o == nil {
			return nil, fmt.Errorf("%w: nil Deployment", ErrNotWorkload)
		}
		w.Kind, meta, tmpl = "Deployment", &o.ObjectMeta, &o.Spec.Template
	case *appsv1.ReplicaSet:
		if o == nil {
			return nil, fmt.Errorf("%w: nil ReplicaSet", ErrNotWorkload)
		}
		w.Kind, meta, tmpl = "ReplicaSet", &o.ObjectMeta, &o.Spec.Template
	case *appsv1.StatefulSet:
		if o == nil {
			return nil, fmt.Errorf("%w: nil StatefulSet", ErrNotWorkload)
		}
		w.Kind, meta, tmpl = "StatefulSet", &o.ObjectMeta, &o.Spec.Template
	case *appsv1.DaemonSet:
		if o == nil {
			return nil, fmt.Errorf("%w: nil DaemonSet", ErrNotWorkload)
		}
		w.Kind, meta, tmpl = "DaemonSet", &o.ObjectMeta, &o.Spec.Template
	case *batchv1.Job:
		if o == nil {
			return nil, fmt.Errorf("%w: nil Job", ErrNotWorkload)
		}
		w.Kind, meta, tmpl = "Job", &o.ObjectMeta, &o.Spec.Template
	case *batchv1.CronJob:
		if o == nil {
			return nil, fmt.Errorf("%w: nil CronJob", ErrNotWorkload)
		}
		w.Kind, meta = "CronJob", &o.ObjectMeta
		tmpl = &o.Spec.JobTemplate.Spec.Template
		w.SpecPath, w.PodMetaPath = "spec.jobTemplate.spec.template.spec", "spec.jobTemplate.spec.template.metadata"
	case *corev1.ReplicationController:
		if o == nil {
			return nil, fmt.Errorf("%w: nil ReplicationController", ErrNotWorkload)
		}
		w.Kind, meta = "ReplicationController", &o.ObjectMeta
		if o.Spec.Template == nil {
			// A ReplicationController without a template runs nothing mamori can check.
			o2 := corev1.PodTemplateSpec{}
			tmpl = &o2
		} else {
			tmpl = o.Spec.Template
		}
	default:
		return nil, fmt.Errorf("%w: %T", ErrNotWorkload, obj)
	}
	if tmpl != nil {
		w.Spec = &tmpl.Spec
		w.PodLabels, w.PodAnnotations = tmpl.Labels, tmpl.Annotations
		if w.SpecPath == "" {
			w.SpecPath, w.PodMetaPath = "spec.template.spec", "spec.template.metadata"
		}
	}
	w.APIVersion = apiVersionOf(w.Kind)
	w.Name, w.Namespace = meta.Name, meta.Namespace
	w.Labels, w.Annotations = meta.Labels, meta.Annotations
	return w, nil
}

func apiVersionOf(kind string) string {
	switch kind {
	case "Pod", "ReplicationController":
		return "v1"
	case "Job", "CronJob":
		return "batch/v1"
	}
	return "apps/v1"
}
