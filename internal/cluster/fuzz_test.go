package cluster

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// FuzzDockerConfig: a pull secret's docker configuration parses or fails
// clearly; whatever parses resolves without a panic.
func FuzzDockerConfig(f *testing.F) {
	f.Add([]byte(`{"auths":{"registry.example.com":{"auth":"dTpw"}}}`), true)
	f.Add([]byte(`{"https://index.docker.io/v1/":{"username":"u","password":"p"}}`), false)
	f.Add([]byte(`{"auths":{"http://h:5000/path":{"auth":"!!"}}}`), true)
	f.Add([]byte(`{"auths":{"":{"auth":"dTpw"}}}`), true)
	f.Fuzz(func(t *testing.T, b []byte, wrapped bool) {
		es, err := parseDockerConfig(b, wrapped)
		if err != nil {
			return
		}
		kc := &pullKeychain{entries: es}
		for _, e := range es {
			if e.host == "" {
				t.Fatal("an entry without a host")
			}
			reg, err := name.NewRegistry(e.host, name.WeakValidation)
			if err != nil {
				continue
			}
			a, err := kc.Resolve(reg)
			if err != nil || a == nil {
				t.Fatalf("resolve %s: %v", e.host, err)
			}
			if a == authn.Anonymous {
				t.Fatalf("%s: the entry's own registry resolved anonymous", e.host)
			}
		}
	})
}
