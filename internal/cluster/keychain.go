package cluster

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
)

// maxDockerConfig bounds a pull secret's docker configuration.
const maxDockerConfig = 1 << 20

// dockerAuth is one registry's entry of a docker configuration.
type dockerAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// pullKeychain answers with the credentials of a pod's image pull secrets,
// in the order the pod lists them (the kubelet's order: the first secret
// with an entry for the registry wins).
type pullKeychain struct {
	entries []keyEntry
}

type keyEntry struct {
	host string
	auth dockerAuth
}

var _ authn.Keychain = (*pullKeychain)(nil)

// parsePullSecret reads the registry credentials of a Secret of type
// kubernetes.io/dockerconfigjson (.dockerconfigjson: {"auths": {...}}) or
// kubernetes.io/dockercfg (.dockercfg: the auths map itself).
func parsePullSecret(s *corev1.Secret) ([]keyEntry, error) {
	var raw []byte
	wrapped := true
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		raw = s.Data[corev1.DockerConfigJsonKey]
	case corev1.SecretTypeDockercfg:
		raw, wrapped = s.Data[corev1.DockerConfigKey], false
	default:
		return nil, fmt.Errorf("secret %s/%s: type %q is not a pull secret", s.Namespace, s.Name, s.Type)
	}
	return parseDockerConfig(raw, wrapped)
}

// parseDockerConfig reads a docker configuration: {"auths": {host: auth}}
// when wrapped, else {host: auth}. Entries are ordered by host.
func parseDockerConfig(raw []byte, wrapped bool) ([]keyEntry, error) {
	if len(raw) > maxDockerConfig {
		return nil, fmt.Errorf("docker configuration of %d bytes", len(raw))
	}
	var auths map[string]dockerAuth
	if wrapped {
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("docker configuration: %w", err)
		}
		auths = cfg.Auths
	} else if err := json.Unmarshal(raw, &auths); err != nil {
		return nil, fmt.Errorf("docker configuration: %w", err)
	}
	var out []keyEntry
	for k, a := range auths {
		h := registryHost(k)
		if h == "" {
			continue
		}
		if a.Auth != "" && a.Username == "" {
			b, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, errors.New("docker configuration: an auth field is not base64")
			}
			u, p, ok := strings.Cut(string(b), ":")
			if !ok {
				return nil, errors.New("docker configuration: an auth field is not user:password")
			}
			a.Username, a.Password, a.Auth = u, p, ""
		}
		out = append(out, keyEntry{host: h, auth: a})
	}
	sortEntries(out)
	return out, nil
}

func sortEntries(es []keyEntry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].host < es[j-1].host; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// registryHost normalizes a docker configuration key ("https://index.docker.io/v1/",
// "registry.example.com:5000", "http://host/path") to the registry host
// go-containerregistry names ("index.docker.io", "registry.example.com:5000").
func registryHost(key string) string {
	k := strings.TrimSpace(key)
	if strings.Contains(k, "://") {
		u, err := url.Parse(k)
		if err != nil {
			return ""
		}
		k = u.Host
	} else if i := strings.IndexByte(k, '/'); i >= 0 {
		k = k[:i]
	}
	switch k {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return "index.docker.io"
	}
	return strings.ToLower(k)
}

// Resolve implements authn.Keychain.
func (k *pullKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := registryHost(r.RegistryStr())
	for _, e := range k.entries {
		if e.host == host {
			return authn.FromConfig(authn.AuthConfig{Username: e.auth.Username, Password: e.auth.Password,
				IdentityToken: e.auth.IdentityToken, RegistryToken: e.auth.RegistryToken}), nil
		}
	}
	return authn.Anonymous, nil
}
