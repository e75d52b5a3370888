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

func TestImageHistoryRunChecks(t *testing.T) {
	cfg := &v1.ConfigFile{Config: v1.Config{User: "app"}, History: []v1.History{
		{CreatedBy: "/bin/sh -c apt-get update && apt-get install -y curl && curl -fsSL https://get.example.com | sh"},
		{CreatedBy: "RUN |1 TOKEN=x /bin/sh -c sudo make install # buildkit"},
		{CreatedBy: "/bin/sh -c #(nop)  CMD [\"sh\"]"},
	}}
	got := map[string]string{}
	for _, f := range CheckImage(cfg, ImageFacts{}) {
		got[f.ID] = f.Location.Config
	}
	for _, id := range []string{DFPipeToShell, DFNoInstallRecs, DFSudo} {
		if _, ok := got[id]; !ok {
			t.Errorf("%s not reported from history: %v", id, got)
		}
	}
	if got[DFSudo] != "History[1]" {
		t.Errorf("sudo location = %q", got[DFSudo])
	}
}
