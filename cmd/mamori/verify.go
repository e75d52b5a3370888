package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"mamori/internal/policy"
	"mamori/internal/sign"
)

// verifyOptions are the signature flags of mamori image (cosign's names).
type verifyOptions struct {
	verify                   bool
	keys                     []string
	identity, identityRegexp string
	issuer, issuerRegexp     string
	trustedRoot              string
	attestation              string
	checks                   map[string]policy.SignatureCheck // by policy trust, for --policy
	result                   *sign.Result                     // of --verify
}

func (v *verifyOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&v.verify, "verify", false, "verify the image's signature offline (cosign signatures and attestations, sigstore bundles) with --key and/or a keyless identity; fail (see --exit-code) when none verifies")
	f.StringSliceVar(&v.keys, "key", nil, "trusted public key (PEM, cosign.pub), repeatable")
	f.StringVar(&v.identity, "certificate-identity", "", "keyless: the signer's certificate identity (email or URI)")
	f.StringVar(&v.identityRegexp, "certificate-identity-regexp", "", "keyless: a regular expression over the certificate identity")
	f.StringVar(&v.issuer, "certificate-oidc-issuer", "", "keyless: the certificate's OIDC issuer")
	f.StringVar(&v.issuerRegexp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression over the OIDC issuer")
	f.StringVar(&v.trustedRoot, "trusted-root", "", "trusted_root.json (sigstore) for keyless verification; nothing is fetched")
	f.StringVar(&v.attestation, "attestation", "", "also require a verified attestation of this predicate type (https://slsa.dev/provenance/v1)")
}

// signPolicy builds the verification policy of the flags.
func (v *verifyOptions) signPolicy() (sign.Policy, error) {
	var p sign.Policy
	for _, k := range v.keys {
		pk, err := sign.LoadPublicKey(k)
		if err != nil {
			return p, err
		}
		p.Keys = append(p.Keys, pk)
	}
	if v.identity != "" || v.identityRegexp != "" || v.issuer != "" || v.issuerRegexp != "" {
		p.Identities = append(p.Identities, sign.Identity{Subject: v.identity, SubjectRegexp: v.identityRegexp,
			Issuer: v.issuer, IssuerRegexp: v.issuerRegexp})
	}
	if v.trustedRoot != "" {
		tr, err := sign.LoadTrustedRoot(v.trustedRoot)
		if err != nil {
			return p, err
		}
		p.TrustedRoot = tr
	}
	p.Attestation = v.attestation
	return p, nil
}

// run verifies ref with the flags (--verify) and with each signatures rule
// of the policy (the result goes into the policy's subject).
func (v *verifyOptions) run(ctx context.Context, ref string, plainHTTP bool, ev *policy.Evaluator, stderr io.Writer, quiet bool) error {
	opts := []sign.Option{}
	if plainHTTP {
		opts = append(opts, sign.WithPlainHTTP())
	}
	if v.verify {
		if ref == "" {
			return errors.New("--verify needs an image reference: signatures live in the registry, not in an archive")
		}
		p, err := v.signPolicy()
		if err != nil {
			return err
		}
		vf, err := sign.New(p, opts...)
		if err != nil {
			return err
		}
		res, err := vf.Verify(ctx, ref)
		if err != nil {
			return err
		}
		v.result = &res
		if res.Verified {
			if !quiet {
				fmt.Fprintf(stderr, "signature: %s verified by %s (%s; %d registry requests, %s)\n", res.Digest, res.Signer, res.Kind,
					res.RoundTrips, res.Duration.Round(time.Millisecond))
			}
		} else {
			fmt.Fprintf(stderr, "signature: %s NOT verified: %s\n", res.Digest, res.Reason)
			for _, r := range res.Rejected {
				fmt.Fprintf(stderr, "  refused: %s\n", r)
			}
		}
	}
	if ev == nil || ref == "" {
		return nil
	}
	var tr *root.TrustedRoot
	if v.trustedRoot != "" {
		var err error
		if tr, err = sign.LoadTrustedRoot(v.trustedRoot); err != nil {
			return err
		}
	}
	for _, req := range ev.SignatureRequirements() {
		if !req.Covers(ref) {
			continue
		}
		if v.checks == nil {
			v.checks = map[string]policy.SignatureCheck{}
		}
		p, err := sign.RequirementPolicy(&req, tr)
		if errors.Is(err, sign.ErrNoTrustedRoot) {
			v.checks[req.Trust] = policy.SignatureCheck{Reason: "the rule names keyless identities only: give --trusted-root to verify them"}
			continue
		}
		if err != nil {
			return err
		}
		vf, err := sign.New(p, opts...)
		if err != nil {
			return err
		}
		v.checks[req.Trust] = sign.Check(vf.Verify(ctx, ref))
	}
	return nil
}
