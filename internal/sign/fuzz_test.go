package sign

import (
	"crypto/sha256"
	"testing"
)

// FuzzBundle feeds arbitrary bytes to bundle verification: an error,
// never a panic, and never a verified result.
func FuzzBundle(f *testing.F) {
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"AAAA"}}`))
	f.Add([]byte(`[[[[`))
	_, pub := newKeyF(f)
	v, err := New(Policy{Keys: []*PublicKey{pub}})
	if err != nil {
		f.Fatal(err)
	}
	digest := sha256.Sum256([]byte("image"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if who, _, err := v.verifyBundle(b, digest[:]); err == nil {
			t.Fatalf("arbitrary bytes verified as %s", who)
		}
	})
}

// FuzzStatement: the envelope and statement decoders on arbitrary input.
func FuzzStatement(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var env Envelope
		_ = strictJSON(b, &env)
		var st Statement
		_ = strictJSON(b, &st)
		_ = PAE(env.PayloadType, b)
	})
}
