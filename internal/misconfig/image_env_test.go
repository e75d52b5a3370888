package misconfig

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestImageSecretEnvByName(t *testing.T) {
	cfg := &v1.ConfigFile{Config: v1.Config{User: "app", Env: []string{"DB_PASSWORD=hunter2", "PASSWORD_FILE=/run/secrets/pw", "API_TOKEN=$TOKEN", "PATH=/usr/bin"}}}
	var got []string
	for _, f := range CheckImage(cfg, ImageFacts{}) {
		if f.ID == ImgSecrets {
			got = append(got, f.Location.Config+" "+f.Evidence)
		}
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "Env[0] DB_PASSWORD=") || strings.Contains(got[0], "hunter2") {
		t.Errorf("findings = %q", got)
	}
}
