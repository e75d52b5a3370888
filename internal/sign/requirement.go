package sign

import (
	"errors"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"

	"mamori/internal/policy"
)

// ErrNoTrustedRoot is returned by RequirementPolicy for a rule that names
// keyless identities only when no trusted root is given: nothing could
// verify its images.
var ErrNoTrustedRoot = errors.New("sign: the rule trusts keyless identities only, and no trusted root is given to verify them")

// RequirementPolicy is the verification policy of a policy's signatures
// rule (policy.Evaluator.SignatureRequirements): its keys, and its keyless
// identities when tr is given. Without a trusted root the identities cannot
// be verified: they are left out when the rule has keys (those still
// verify), and ErrNoTrustedRoot is returned when it has none. `mamori image
// --policy` and the cluster component's webhook both verify through it.
func RequirementPolicy(req *policy.SignatureRequirement, tr *root.TrustedRoot) (Policy, error) {
	p := Policy{TrustedRoot: tr}
	for _, k := range req.Keys {
		pk, err := ParsePublicKey([]byte(k))
		if err != nil {
			return Policy{}, err
		}
		p.Keys = append(p.Keys, pk)
	}
	if tr != nil {
		for _, id := range req.Identities {
			p.Identities = append(p.Identities, Identity{Issuer: id.Issuer, IssuerRegexp: id.IssuerRegexp,
				Subject: id.Subject, SubjectRegexp: id.SubjectRegexp})
		}
	}
	if len(p.Keys) == 0 && len(p.Identities) == 0 {
		if len(req.Identities) > 0 {
			return Policy{}, ErrNoTrustedRoot
		}
		return Policy{}, ErrPolicy
	}
	return p, nil
}

// Check is what a policy reads of one verification (the entry of
// policy.ImageScan.Signatures under the rule's Trust): the result, or a
// registry error as a verification that failed, naming the error.
func Check(res Result, err error) policy.SignatureCheck {
	if err != nil {
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return policy.SignatureCheck{Reason: "registry error: " + msg}
	}
	return policy.SignatureCheck{Verified: res.Verified, Signer: res.Signer, Reason: res.Reason}
}
