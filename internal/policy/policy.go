package policy

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"

	"mamori/internal/model"
)

// APIVersion and Kind identify a policy document. A document with another
// apiVersion is refused, so the format can change without being misread.
const (
	APIVersion = "mamori.dev/v1"
	Kind       = "Policy"
)

// Policy is one policy document (docs/policies.md). It is plain data: Parse
// fills and validates it, Compile turns it into an Evaluator.
type Policy struct {
	APIVersion  string `yaml:"apiVersion" json:"apiVersion"`
	Kind        string `yaml:"kind" json:"kind"`
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// UnknownImages says what admission does with an image that was never
	// scanned.
	UnknownImages UnknownImages `yaml:"unknownImages,omitempty" json:"unknownImages,omitempty"`
	// Admission rules decide about workloads being created or updated, pod
	// exec/attach/portforward requests, and images in CI and registries.
	// Actions: log, block.
	Admission []Rule `yaml:"admission,omitempty" json:"admission,omitempty"`
	// Compliance rules are re-checked on running workloads. Actions: log,
	// isolate, terminate.
	Compliance []Rule `yaml:"compliance,omitempty" json:"compliance,omitempty"`
	// Runtime selects runtime rulesets (internal/runtime/rules) for pods and
	// gives each rule its action. Actions: log, isolate, terminate.
	Runtime []RulesetRef `yaml:"runtime,omitempty" json:"runtime,omitempty"`
	// Exceptions waive violations, each with a reason and an optional expiry.
	Exceptions []Exception `yaml:"exceptions,omitempty" json:"exceptions,omitempty"`

	// src remembers where things were written, for errors (Parse fills it).
	src *source
}

// Unknown-image handling (UnknownImages.Action).
const (
	// UnknownScan: scan the image inline within the webhook's deadline and
	// decide on the result; if the scan fails, OnScanFailure decides.
	UnknownScan = "scan"
	// UnknownAllow: admit, log, and scan the image afterwards.
	UnknownAllow = "allow"
	// UnknownBlock: deny until the image has been scanned.
	UnknownBlock = "block"
)

// UnknownImages is a policy's choice for images never scanned.
type UnknownImages struct {
	// Action is scan, allow (the default) or block.
	Action string `yaml:"action,omitempty" json:"action,omitempty"`
	// OnScanFailure is allow (the default) or block: what scan does when
	// the inline scan could not finish.
	OnScanFailure string `yaml:"onScanFailure,omitempty" json:"onScanFailure,omitempty"`
}

// Rule is one admission or compliance rule: a name, an action, an optional
// scope and exactly one criterion (a typed check or a CEL expression).
type Rule struct {
	Name        string       `yaml:"name" json:"name"`
	Description string       `yaml:"description,omitempty" json:"description,omitempty"`
	Action      model.Action `yaml:"action" json:"action"`
	// Match limits the rule to some namespaces or labels; empty matches all.
	Match *Match `yaml:"match,omitempty" json:"match,omitempty"`

	Criteria `yaml:",inline" json:",inline"`
}

// Criteria are the typed checks a rule can carry; exactly one is set.
// The names of the Pod Security Standards controls follow the standard
// (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
type Criteria struct {
	// PodSecurity applies every control of a Pod Security Standards level.
	PodSecurity *PodSecurity `yaml:"podSecurity,omitempty" json:"podSecurity,omitempty"`

	// Baseline controls.
	HostProcess    *Flag         `yaml:"hostProcess,omitempty" json:"hostProcess,omitempty"`
	HostNamespaces *Flag         `yaml:"hostNamespaces,omitempty" json:"hostNamespaces,omitempty"`
	Privileged     *Flag         `yaml:"privileged,omitempty" json:"privileged,omitempty"`
	Capabilities   *Capabilities `yaml:"capabilities,omitempty" json:"capabilities,omitempty"`
	HostPath       *HostPath     `yaml:"hostPathVolumes,omitempty" json:"hostPathVolumes,omitempty"`
	HostPorts      *HostPorts    `yaml:"hostPorts,omitempty" json:"hostPorts,omitempty"`
	HostProbes     *Flag         `yaml:"hostProbes,omitempty" json:"hostProbes,omitempty"`
	AppArmor       *Flag         `yaml:"appArmor,omitempty" json:"appArmor,omitempty"`
	SELinux        *SELinux      `yaml:"seLinux,omitempty" json:"seLinux,omitempty"`
	ProcMount      *Flag         `yaml:"procMount,omitempty" json:"procMount,omitempty"`
	Seccomp        *Flag         `yaml:"seccomp,omitempty" json:"seccomp,omitempty"`
	Sysctls        *Sysctls      `yaml:"sysctls,omitempty" json:"sysctls,omitempty"`
	// Restricted controls.
	Volumes                *Volumes      `yaml:"volumeTypes,omitempty" json:"volumeTypes,omitempty"`
	PrivilegeEscalation    *Flag         `yaml:"privilegeEscalation,omitempty" json:"privilegeEscalation,omitempty"`
	RunAsNonRoot           *Flag         `yaml:"runAsNonRoot,omitempty" json:"runAsNonRoot,omitempty"`
	RunAsUser              *Flag         `yaml:"runAsUser,omitempty" json:"runAsUser,omitempty"`
	SeccompRestricted      *Flag         `yaml:"seccompRestricted,omitempty" json:"seccompRestricted,omitempty"`
	CapabilitiesRestricted *Capabilities `yaml:"capabilitiesRestricted,omitempty" json:"capabilitiesRestricted,omitempty"`
	ProcMountRestricted    *Flag         `yaml:"procMountRestricted,omitempty" json:"procMountRestricted,omitempty"`

	// Workload properties beyond the Pod Security Standards.
	ReadOnlyRootFilesystem       *Flag       `yaml:"readOnlyRootFilesystem,omitempty" json:"readOnlyRootFilesystem,omitempty"`
	Resources                    *Resources  `yaml:"resources,omitempty" json:"resources,omitempty"`
	Registries                   *Registries `yaml:"registries,omitempty" json:"registries,omitempty"`
	LatestTag                    *Flag       `yaml:"latestTag,omitempty" json:"latestTag,omitempty"`
	RequireDigest                *Flag       `yaml:"requireDigest,omitempty" json:"requireDigest,omitempty"`
	ImagePullPolicy              *PullPolicy `yaml:"imagePullPolicy,omitempty" json:"imagePullPolicy,omitempty"`
	Signatures                   *Signatures `yaml:"signatures,omitempty" json:"signatures,omitempty"`
	AutomountServiceAccountToken *Flag       `yaml:"automountServiceAccountToken,omitempty" json:"automountServiceAccountToken,omitempty"`
	PodAccess                    *PodAccess  `yaml:"podAccess,omitempty" json:"podAccess,omitempty"`

	// Scan results of the images.
	Vulnerabilities   *Vulnerabilities `yaml:"vulnerabilities,omitempty" json:"vulnerabilities,omitempty"`
	Malware           *Findings        `yaml:"malware,omitempty" json:"malware,omitempty"`
	Secrets           *Findings        `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	Misconfigurations *Findings        `yaml:"misconfigurations,omitempty" json:"misconfigurations,omitempty"`
	NotScanned        *Flag            `yaml:"notScanned,omitempty" json:"notScanned,omitempty"`
	ScanAge           *ScanAge         `yaml:"scanAge,omitempty" json:"scanAge,omitempty"`

	// CEL is a custom rule: a boolean expression over object,
	// namespaceObject, images, vulnerabilities and findings that is true when
	// the subject VIOLATES the rule (docs/policies.md lists the variables).
	CEL string `yaml:"cel,omitempty" json:"cel,omitempty"`
}

// Flag is a criterion without parameters, written `privileged: {}` or
// `privileged: true`.
type Flag struct{}

// UnmarshalYAML accepts true, {} and an empty value.
func (f *Flag) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == ""):
		return nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!!bool":
		if n.Value == "true" || n.Value == "True" || n.Value == "TRUE" {
			return nil
		}
		return fmt.Errorf("line %d: a check is switched on with true or {}; remove the rule to switch it off", n.Line)
	case n.Kind == yaml.MappingNode && len(n.Content) == 0:
		return nil
	}
	return fmt.Errorf("line %d: this check takes no parameters (write true or {})", n.Line)
}

// MarshalYAML writes true.
func (Flag) MarshalYAML() (any, error) { return true, nil }

// MarshalJSON writes true.
func (Flag) MarshalJSON() ([]byte, error) { return []byte("true"), nil }

// UnmarshalJSON accepts true and {}.
func (f *Flag) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		if x {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	}
	return fmt.Errorf("a check without parameters is written true or {}")
}

// Pod Security Standards levels.
const (
	LevelBaseline   = "baseline"
	LevelRestricted = "restricted"
)

// PodSecurity applies a Pod Security Standards level: baseline, or
// restricted (which includes baseline, as the standard defines it).
type PodSecurity struct {
	Level string `yaml:"level" json:"level"`
	// Exclude names controls of the level not to apply ("hostPorts").
	Exclude []string `yaml:"exclude,omitempty" json:"exclude,omitempty"`
}

// Capabilities is the capabilities control. Baseline: added capabilities
// must be in AllowedAdd (default: the standard's list). Restricted
// (capabilitiesRestricted): ALL must be dropped and only AllowedAdd
// (default NET_BIND_SERVICE) added.
type Capabilities struct {
	AllowedAdd []string `yaml:"allowedAdd,omitempty" json:"allowedAdd,omitempty"`
}

// HostPath forbids hostPath volumes except under AllowedPaths (directories;
// "/var/log" allows "/var/log/pods", not "/var/logs").
type HostPath struct {
	AllowedPaths []string `yaml:"allowedPaths,omitempty" json:"allowedPaths,omitempty"`
}

// HostPorts forbids host ports except those listed.
type HostPorts struct {
	Allowed []int32 `yaml:"allowed,omitempty" json:"allowed,omitempty"`
}

// SELinux restricts seLinuxOptions: type in AllowedTypes (default: the
// standard's list), no user, no role.
type SELinux struct {
	AllowedTypes []string `yaml:"allowedTypes,omitempty" json:"allowedTypes,omitempty"`
}

// Sysctls allows only the listed sysctls (default: the standard's safe set).
type Sysctls struct {
	Allowed []string `yaml:"allowed,omitempty" json:"allowed,omitempty"`
}

// Volumes allows only the listed volume types (default: the restricted
// standard's list).
type Volumes struct {
	Allowed []string `yaml:"allowed,omitempty" json:"allowed,omitempty"`
}

// Resources requires resource limits and requests to be set on every
// container (not init or ephemeral containers).
type Resources struct {
	Limits   []string `yaml:"limits,omitempty" json:"limits,omitempty"`
	Requests []string `yaml:"requests,omitempty" json:"requests,omitempty"`
}

// Registries restricts where images come from. Entries without a slash are
// registry hosts ("ghcr.io", "docker.io"); entries with one are globs over the
// repository ("ghcr.io/acme/*"). Deny wins over Allow; a non-empty Allow
// refuses every image it does not list.
type Registries struct {
	Allow []string `yaml:"allow,omitempty" json:"allow,omitempty"`
	Deny  []string `yaml:"deny,omitempty" json:"deny,omitempty"`
}

// Signatures requires the images of some registries to be signed by one of
// some keys or keyless identities ("images from these registries must be
// signed by one of these keys / identities"). The policy does not verify:
// the component that evaluates it (the cluster component's webhook, the
// server's registry scans) verifies each covered image with
// internal/sign against the rule's keys and identities and puts the
// outcome in the subject (ImageScan.Signatures, Image.Signatures, keyed
// by SignatureRequirement.Trust), as it puts scan results.
type Signatures struct {
	// Registries are hosts ("registry.example.com", "*.example.com") or,
	// with a slash, globs over the repository ("ghcr.io/acme/*"), as in
	// the registries criterion; "*" covers every image.
	Registries []string `yaml:"registries" json:"registries"`
	// Keys are PEM public keys (cosign.pub: ECDSA, Ed25519 or RSA).
	Keys []string `yaml:"keys,omitempty" json:"keys,omitempty"`
	// Identities are keyless signers (Fulcio certificates), verified
	// against the trusted root the evaluating component is configured with.
	Identities []SignerIdentity `yaml:"identities,omitempty" json:"identities,omitempty"`
}

// SignerIdentity is a keyless signer: the certificate's OIDC issuer and
// subject (email or URI), exact or as regular expressions.
type SignerIdentity struct {
	Issuer        string `yaml:"issuer,omitempty" json:"issuer,omitempty"`
	IssuerRegexp  string `yaml:"issuerRegexp,omitempty" json:"issuerRegexp,omitempty"`
	Subject       string `yaml:"subject,omitempty" json:"subject,omitempty"`
	SubjectRegexp string `yaml:"subjectRegexp,omitempty" json:"subjectRegexp,omitempty"`
}

// String is subject@issuer, a regular expression marked with ~.
func (i SignerIdentity) String() string {
	s, is := i.Subject, i.Issuer
	if s == "" {
		s = "~" + i.SubjectRegexp
	}
	if is == "" {
		is = "~" + i.IssuerRegexp
	}
	return s + "@" + is
}

// PullPolicy requires imagePullPolicy to be one of Allowed (as Kubernetes
// defaults it when unset: Always for `latest` or no tag, IfNotPresent
// otherwise).
type PullPolicy struct {
	Allowed []string `yaml:"allowed" json:"allowed"`
}

// PodAccess matches exec, attach and port-forward requests into pods.
type PodAccess struct {
	// Operations: exec, attach, portforward; empty means all three.
	Operations []string `yaml:"operations,omitempty" json:"operations,omitempty"`
	// AllowUsers and AllowGroups are never matched (globs).
	AllowUsers  []string `yaml:"allowUsers,omitempty" json:"allowUsers,omitempty"`
	AllowGroups []string `yaml:"allowGroups,omitempty" json:"allowGroups,omitempty"`
}

// Vulnerabilities matches vulnerabilities in the images. Every condition
// given must hold (they narrow); at least one vulnerability must match.
type Vulnerabilities struct {
	// Severity: at or above (critical, high, medium, low, negligible, unknown).
	Severity string `yaml:"severity,omitempty" json:"severity,omitempty"`
	// CVSS: highest CVSS base score at or above (0-10).
	CVSS float64 `yaml:"cvss,omitempty" json:"cvss,omitempty"`
	// Fixable: only vulnerabilities with a known fixed version.
	Fixable bool `yaml:"fixable,omitempty" json:"fixable,omitempty"`
	// PublishedDaysAgo: only vulnerabilities published at least this many
	// days ago (a grace period for new ones). A vulnerability without a
	// publication date counts as old.
	PublishedDaysAgo int `yaml:"publishedDaysAgo,omitempty" json:"publishedDaysAgo,omitempty"`
	// KnownExploited: only vulnerabilities in CISA's Known Exploited
	// Vulnerabilities catalog (see knownExploited in kev.go).
	KnownExploited bool `yaml:"knownExploited,omitempty" json:"knownExploited,omitempty"`
	// IDs: only these vulnerabilities (ID or alias).
	IDs []string `yaml:"ids,omitempty" json:"ids,omitempty"`
}

// Findings matches malware, secret or misconfiguration findings in the images.
type Findings struct {
	// Severity: at or above; empty matches every severity.
	Severity string `yaml:"severity,omitempty" json:"severity,omitempty"`
	// IDs: only findings with these rule, signature or check IDs (globs).
	IDs []string `yaml:"ids,omitempty" json:"ids,omitempty"`
}

// ScanAge matches images whose last scan is older than MaxHours.
type ScanAge struct {
	MaxHours int `yaml:"maxHours" json:"maxHours"`
}

// Match scopes a rule, a ruleset reference or nothing at all: every field
// given must match.
type Match struct {
	// Namespaces are globs over the namespace name; empty matches all.
	Namespaces []string `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
	// ExcludeNamespaces are globs never matched.
	ExcludeNamespaces []string `yaml:"excludeNamespaces,omitempty" json:"excludeNamespaces,omitempty"`
	// Selector selects pods by their labels (the pod template's labels for
	// a controller).
	Selector *LabelSelector `yaml:"selector,omitempty" json:"selector,omitempty"`
	// NamespaceSelector selects by the namespace's labels.
	NamespaceSelector *LabelSelector `yaml:"namespaceSelector,omitempty" json:"namespaceSelector,omitempty"`
	// Kinds are the workload kinds (Pod, Deployment, ...); empty matches all.
	Kinds []string `yaml:"kinds,omitempty" json:"kinds,omitempty"`
}

// LabelSelector is Kubernetes' label selector.
type LabelSelector struct {
	MatchLabels      map[string]string  `yaml:"matchLabels,omitempty" json:"matchLabels,omitempty"`
	MatchExpressions []LabelRequirement `yaml:"matchExpressions,omitempty" json:"matchExpressions,omitempty"`
}

// LabelRequirement is one expression of a label selector: Operator In,
// NotIn, Exists or DoesNotExist.
type LabelRequirement struct {
	Key      string   `yaml:"key" json:"key"`
	Operator string   `yaml:"operator" json:"operator"`
	Values   []string `yaml:"values,omitempty" json:"values,omitempty"`
}

// RulesetRef puts a runtime ruleset (internal/runtime/rules: a named
// selection of runtime rules, from the built-in or user rule files; "default"
// is every rule with its own action) in force for the containers it selects
// and chooses the actions of its rules. The node agent turns each reference
// into an engine ruleset: the named ruleset's rules, scoped by Match and
// Host, with the actions below.
type RulesetRef struct {
	// Ruleset is the name of the ruleset.
	Ruleset string `yaml:"ruleset" json:"ruleset"`
	// Match selects containers by namespace (exact names) and pod labels
	// (selector), as the runtime engine does; other Match fields are refused.
	Match *Match `yaml:"match,omitempty" json:"match,omitempty"`
	// Host says whether the ruleset also covers processes outside
	// containers; unset, it does exactly when Match is empty.
	Host *bool `yaml:"host,omitempty" json:"host,omitempty"`
	// Action, when set, is the action of every rule of the ruleset not named
	// in Rules: log, isolate or terminate. Empty keeps each rule's action.
	Action model.Action `yaml:"action,omitempty" json:"action,omitempty"`
	// Rules gives single rules their own action (rule ID -> action).
	Rules map[string]model.Action `yaml:"rules,omitempty" json:"rules,omitempty"`
}

// Exception waives the violations it matches. Every scope field given must
// match; at least one must be given.
type Exception struct {
	// Name identifies the exception in decisions and events.
	Name string `yaml:"name" json:"name"`
	// Reason is required: why the waiver is acceptable.
	Reason string `yaml:"reason" json:"reason"`
	// Expires is a date (2026-12-31, end of that day UTC) or an RFC 3339
	// time; after it the exception is no longer in force. Empty never expires.
	Expires string `yaml:"expires,omitempty" json:"expires,omitempty"`
	// Rules limits the exception to these rules (admission or compliance
	// rule names, runtime rule IDs or ruleset names); empty means all.
	Rules []string `yaml:"rules,omitempty" json:"rules,omitempty"`
	// Namespaces are globs over the namespace.
	Namespaces []string `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
	// Selector selects by pod labels.
	Selector *LabelSelector `yaml:"selector,omitempty" json:"selector,omitempty"`
	// Images are globs over image references (`*` matches any characters,
	// slashes included).
	Images []string `yaml:"images,omitempty" json:"images,omitempty"`
	// Vulnerabilities are vulnerability IDs or aliases (CVE-2023-1234).
	Vulnerabilities []string `yaml:"vulnerabilities,omitempty" json:"vulnerabilities,omitempty"`
}
