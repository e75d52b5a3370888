package secret

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"mamori/internal/model"
)

// Test secrets are generated at run time from a seeded generator and glued
// together from fragments, so that this repository holds no string that a
// secret scanner (ours or another) would report. None is a real credential.

const (
	alnum   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upper32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	upperD  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	hexd    = "0123456789abcdef"
	digits  = "0123456789"
	letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b64     = alnum + "+/"
	urlsafe = alnum + "_-"
	bech32  = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
)

type gen struct{ r *rand.Rand }

func newGen() *gen { return &gen{rand.New(rand.NewPCG(1, 2))} }

func (g *gen) s(set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[g.r.IntN(len(set))]
	}
	return string(b)
}

// pem wraps a random body in BEGIN/END lines of label.
func (g *gen) pem(label string, bodyLen int) (text, body string) {
	var sb strings.Builder
	raw := g.s(b64, bodyLen)
	for i := 0; i < len(raw); i += 64 {
		e := min(i+64, len(raw))
		sb.WriteString(raw[i:e])
		sb.WriteByte('\n')
	}
	body = "\n" + sb.String()
	dash := strings.Repeat("-", 5)
	return dash + "BEG" + "IN " + label + dash + body + dash + "EN" + "D " + label + dash + "\n", body
}

type ruleCase struct {
	rule   string
	secret string   // raw secret as the rule should report it
	text   string   // positive text (contains secret)
	neg    []string // texts the rule must not report
}

func ruleCases() []ruleCase {
	g := newGen()
	var cs []ruleCase
	add := func(rule, secret, pre, post string, neg ...string) {
		cs = append(cs, ruleCase{rule: rule, secret: secret, text: pre + secret + post, neg: neg})
	}
	dash := strings.Repeat("-", 5)
	beginNoBody := func(label string) string {
		return dash + "BEG" + "IN " + label + dash + "\n...\n" + dash + "EN" + "D " + label + dash + "\n"
	}
	for _, k := range []struct{ rule, label string }{
		{"private-key-rsa", "RSA PRIV" + "ATE KEY"},
		{"private-key-ec", "EC PRIV" + "ATE KEY"},
		{"private-key-dsa", "DSA PRIV" + "ATE KEY"},
		{"private-key-openssh", "OPENSSH PRIV" + "ATE KEY"},
		{"private-key-pkcs8", "PRIV" + "ATE KEY"},
		{"private-key-pkcs8-encrypted", "ENCRYPTED PRIV" + "ATE KEY"},
		{"private-key-pgp", "PGP PRIV" + "ATE KEY BLOCK"},
	} {
		text, body := g.pem(k.label, 300)
		cs = append(cs, ruleCase{rule: k.rule, secret: body, text: "key:\n" + text, neg: []string{beginNoBody(k.label), strings.ReplaceAll(text, "PRIV"+"ATE", "PUBLIC")}})
	}
	pub, priv := g.s(b64, 64), g.s(b64, 64)
	add("private-key-putty", priv+"\n", "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: k\nPublic-Lines: 1\n"+pub+"\nPrivate-Lines: 1\n", "Private-MAC: 00\n",
		"PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\n")
	add("age-secret-key", "AGE-SECRET-"+"KEY-1"+g.s(bech32, 58), "# key\n", "\n", "AGE-SECRET-"+"KEY-1"+"SHORT")

	add("aws-access-key-id", "AK"+"IA"+g.s(upper32, 16), "aws_access_key_id = ", "\n",
		"AK"+"IA"+g.s(upper32, 10), "X"+"AK"+"IA"+g.s(upper32, 16), "ak"+"ia"+strings.ToLower(g.s(upper32, 16)))
	add("aws-secret-access-key", g.s(b64, 40), "aws_secret_access_key = ", "\n",
		"aws_secret_access_key = "+strings.Repeat("ab", 20), "aws_secret_access_key = "+g.s(b64, 30))
	gcpBody := "-----BEG" + "IN PRIV" + "ATE KEY-----\\n" + g.s(b64, 200) + "\\n-----EN" + "D PRIV" + "ATE KEY-----\\n"
	add("gcp-service-account-key", gcpBody, "{\n  \"type\": \"service_account\",\n  \"project_id\": \"p\",\n  \"private_key\": \"", "\",\n  \"client_email\": \"a@p.iam.gserviceaccount.com\"\n}\n",
		"{\n  \"type\": \"authorized_user\",\n  \"private_key\": \""+gcpBody+"\"\n}\n")
	add("gcp-api-key", "AI"+"za"+g.s(urlsafe, 35), "GOOGLE_API_KEY=", "\n", "AI"+"za"+g.s(urlsafe, 20))
	add("gcp-oauth-client-secret", "GOCSPX"+"-"+g.s(urlsafe, 28), `"client_secret":"`, `"`, "GOCSPX"+"-"+g.s(urlsafe, 10))
	add("azure-storage-account-key", g.s(alnum+"+/", 86)+"==", "DefaultEndpointsProtocol=https;AccountName=acct;Account"+"Key=", ";EndpointSuffix=core.windows.net",
		"AccountKey=short==")
	add("azure-ad-client-secret", g.s(alnum, 3)+"8Q~"+g.s(urlsafe, 34), "AZURE_CLIENT_SECRET=", "\n", "AZURE_CLIENT_SECRET=abc8Q~short")
	add("alibaba-access-key-id", "LT"+"AI"+g.s(alnum, 20), "ALIBABA_KEY=", "\n", "LT"+"AI"+"abc")
	add("digitalocean-token", "dop"+"_v1_"+g.s(hexd, 64), "DO_TOKEN=", "\n", "dop"+"_v1_"+g.s(hexd, 30))
	add("heroku-api-key", g.s(hexd, 8)+"-"+g.s(hexd, 4)+"-"+g.s(hexd, 4)+"-"+g.s(hexd, 4)+"-"+g.s(hexd, 12), `HEROKU_API_KEY="`, `"`, `HEROKU_APP_NAME="my-app"`)
	add("heroku-api-key-v2", "HR"+"KU-"+g.s(urlsafe, 60), "token: ", "\n", "HR"+"KU-"+g.s(urlsafe, 20))

	for _, p := range []struct{ rule, prefix string }{
		{"github-pat", "gh" + "p_"}, {"github-oauth-token", "gh" + "o_"}, {"github-user-to-server-token", "gh" + "u_"},
		{"github-server-to-server-token", "gh" + "s_"}, {"github-refresh-token", "gh" + "r_"},
	} {
		add(p.rule, p.prefix+g.s(alnum, 36), "GH_TOKEN=", "\n", p.prefix+g.s(alnum, 20), p.prefix+g.s(alnum, 36)+"_"+g.s(alnum, 3)+"x")
	}
	add("github-fine-grained-pat", "github"+"_pat_"+g.s(alnum, 22)+"_"+g.s(alnum, 59), "token: ", "\n", "github"+"_pat_"+g.s(alnum, 10))
	add("gitlab-pat", "gl"+"pat-"+g.s(urlsafe, 20), "GITLAB_TOKEN=", "\n", "gl"+"pat-short")
	add("gitlab-pipeline-trigger-token", "gl"+"ptt-"+g.s(hexd, 40), "token=", "\n", "gl"+"ptt-"+g.s(hexd, 10))
	add("gitlab-runner-token", "gl"+"rt-"+g.s(urlsafe, 20), "token = ", "\n", "gl"+"rt-short")
	add("gitlab-deploy-token", "gl"+"dt-"+g.s(urlsafe, 20), "password: ", "\n", "gl"+"dt-short")
	add("bitbucket-client-secret", g.s(alnum, 32), `BITBUCKET_CLIENT_SECRET="`, `"`, `BITBUCKET_URL="https://bitbucket.org/team"`, `BITBUCKET_SECRET="`+strings.Repeat("ab", 16)+`"`)
	add("atlassian-api-token", "ATA"+"TT3"+g.s(urlsafe, 190), "token: ", "\n", "ATA"+"TT3"+g.s(urlsafe, 40))
	add("atlassian-api-token-legacy", g.s(alnum, 24), `JIRA_API_TOKEN="`, `"`, `JIRA_URL="https://acme.atlassian.net"`)
	add("npm-access-token", "np"+"m_"+g.s(alnum, 36), "NPM_TOKEN=", "\n", "npm_config_cache=/tmp/npm", "np"+"m_"+g.s(alnum, 20))
	add("npmrc-auth-token", g.s(hexd, 8)+"-"+g.s(hexd, 4)+"-"+g.s(hexd, 12), "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_auth"+"Token=", "\n",
		"//registry.npmjs.org/:_auth"+"Token=${NPM_TOKEN}\n",
		"        proxy_auth = base64.b64encode(user_pass).decode()", "    self._auth = get_netrc_auth(url)")
	add("pypi-upload-token", "py"+"pi-AgEIcHlwaS5vcmc"+g.s(urlsafe, 70), "password = ", "\n", "py"+"pi-AgEIcHlwaS5vcmc"+g.s(urlsafe, 10))
	add("rubygems-api-key", "ruby"+"gems_"+g.s(hexd, 48), ":rubygems_api_key: ", "\n", "ruby"+"gems_"+g.s(hexd, 10))
	dockerAuth := base64.StdEncoding.EncodeToString([]byte("user:" + g.s(alnum, 20)))
	add("docker-config-auth", dockerAuth, `{"auths":{"ghcr.io":{"auth":"`, `"}}}`, `{"auths":{"ghcr.io":{}},"credsStore":"desktop"}`, `{"auth":"`+dockerAuth+`"}`)
	pull := base64.StdEncoding.EncodeToString([]byte(`{"auths":{"ghcr.io":{"auth":"` + dockerAuth + `"}}}`))
	add("kubernetes-dockerconfigjson", pull, "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: ", "\n",
		"data:\n  .dockerconfigjson: \"\"\n")

	add("slack-bot-token", "xo"+"xb-"+g.s(digits, 11)+"-"+g.s(digits, 12)+"-"+g.s(alnum, 24), "SLACK_BOT_TOKEN=", "\n", "xo"+"xb-your-token-here")
	add("slack-user-token", "xo"+"xp-"+g.s(digits, 11)+"-"+g.s(digits, 11)+"-"+g.s(digits, 12)+"-"+g.s(hexd, 32), "SLACK_TOKEN=", "\n", "xo"+"xp-123-abc")
	add("slack-app-token", "xa"+"pp-1-"+g.s(upperD, 11)+"-"+g.s(digits, 13)+"-"+g.s(hexd, 64), "SLACK_APP_TOKEN=", "\n", "xa"+"pp-1-ABC-123-def")
	add("slack-webhook-url", "https://hooks"+".slack.com/services/T"+g.s(upperD, 8)+"/B"+g.s(upperD, 8)+"/"+g.s(alnum, 24), "url: ", "\n", "https://hooks"+".slack.com/services/XXX")
	add("stripe-secret-key", "sk"+"_live_"+g.s(alnum, 24), "STRIPE_KEY=", "\n", "sk"+"_test_"+g.s(alnum, 24), "sk"+"_live_"+g.s(alnum, 10))
	add("stripe-restricted-key", "rk"+"_live_"+g.s(alnum, 24), "STRIPE_KEY=", "\n", "rk"+"_live_"+g.s(alnum, 10))
	add("twilio-api-key", "S"+"K"+g.s(hexd, 32), "sid: ", "\n", "S"+"K"+g.s(hexd, 10), "TA"+"SK"+g.s(hexd, 32))
	add("twilio-account-sid", "A"+"C"+g.s(hexd, 32), `TWILIO_ACCOUNT_SID="`, `"`, "account = A"+"C"+g.s(hexd, 32))
	add("sendgrid-api-key", "S"+"G."+g.s(urlsafe, 22)+"."+g.s(urlsafe, 43), "SENDGRID_API_KEY=", "\n", "S"+"G."+g.s(urlsafe, 10))
	add("mailgun-api-key", "key"+"-"+g.s(hexd, 32), `MAILGUN_API_KEY="`, `"`, `MAILGUN_DOMAIN="mg.acme.org"`)
	add("mailchimp-api-key", g.s(hexd, 32)+"-us"+"12", "MAILCHIMP_KEY=", "\n", g.s(hexd, 32)+"-usa", g.s(hexd, 20)+"-us"+"12")
	add("sendinblue-api-key", "xkey"+"sib-"+g.s(hexd, 64)+"-"+g.s(alnum, 16), "BREVO_KEY=", "\n", "xkey"+"sib-"+g.s(hexd, 10))
	add("shopify-token", "shp"+"at_"+g.s(hexd, 32), "SHOPIFY_TOKEN=", "\n", "shp"+"at_"+g.s(hexd, 10))
	add("square-access-token", "sq0"+"csp-"+g.s(urlsafe, 43), "SQUARE_SECRET=", "\n", "sq0"+"csp-short")
	add("databricks-token", "da"+"pi"+g.s(hexd, 32), "DATABRICKS_TOKEN=", "\n", "da"+"pi"+"xyz")
	add("okta-api-token", "0"+"0"+g.s(urlsafe, 40), "OKTA_API_TOKEN=", "\n", "OKTA_DOMAIN=dev-123.okta.com")
	add("vault-service-token", "hv"+"s."+g.s(urlsafe, 90), "VAULT_TOKEN=", "\n", "hv"+"s.short")
	add("vault-token-legacy", "s."+g.s(alnum, 24), "VAULT_TOKEN=", "\n", "VAULT_ADDR=https://vault:8200")
	add("terraform-cloud-token", g.s(alnum, 14)+".atlas"+"v1."+g.s(urlsafe, 65), `token = "`, `"`, g.s(alnum, 14)+".atlas"+"v1.short")
	add("grafana-token", "gl"+"sa_"+g.s(alnum, 32)+"_"+g.s(hexd, 8), "GRAFANA_TOKEN=", "\n", "gl"+"sa_short")
	add("new-relic-api-key", "NR"+"AK-"+g.s(upperD, 27), "NEW_RELIC_API_KEY=", "\n", "NR"+"AK-SHORT")
	add("linear-api-key", "lin"+"_api_"+g.s(alnum, 40), "LINEAR_KEY=", "\n", "lin"+"_api_short")
	add("postman-api-key", "PM"+"AK-"+g.s(hexd, 24)+"-"+g.s(hexd, 34), "POSTMAN_KEY=", "\n", "PM"+"AK-"+g.s(hexd, 24))
	add("pulumi-access-token", "pu"+"l-"+g.s(hexd, 40), "PULUMI_ACCESS_TOKEN=", "\n", "pu"+"l-"+g.s(hexd, 12))
	add("doppler-token", "dp"+".pt."+g.s(alnum, 43), "DOPPLER_TOKEN=", "\n", "dp"+".pt.short")
	add("dynatrace-token", "dt0"+"c01."+g.s(upperD, 24)+"."+g.s(upperD, 64), "DT_TOKEN=", "\n", "dt0"+"c01.SHORT.TOKEN")
	add("planetscale-token", "pscale"+"_tkn_"+g.s(urlsafe, 43), "PLANETSCALE_TOKEN=", "\n", "pscale"+"_tkn_short")
	add("openai-api-key", "sk-"+"proj-"+g.s(urlsafe, 40)+"T3Blbk"+"FJ"+g.s(urlsafe, 40), "OPENAI_API_KEY=", "\n", "sk-"+"proj-"+g.s(urlsafe, 40))
	add("anthropic-api-key", "sk-"+"ant-api03-"+g.s(urlsafe, 95), "ANTHROPIC_API_KEY=", "\n", "sk-"+"ant-api03-short")
	add("huggingface-token", "h"+"f_"+g.s(letters, 34), "HF_TOKEN=", "\n", "h"+"f_"+strings.Repeat("a", 34))
	enc := base64.RawURLEncoding.EncodeToString
	jwt := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(`{"sub":"`+g.s(alnum, 12)+`","exp":4102444800}`)) + "." + g.s(urlsafe, 43)
	example := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(`{"sub":"1234567890","name":"John Doe","iat":1516239022}`)) + "." + g.s(urlsafe, 43)
	add("jwt", jwt, "Authorization: Bearer ", "\n", example, "eyJ"+"abc.eyJ"+"def.ghi")

	// Ceph keyrings: ceph-authtool's format ([client.admin] then key = AQ...==).
	add("ceph-keyring-key", "AQ"+g.s(b64, 38)+"==", "[client.admin]\n\tkey = ", "\n\tcaps mon = \"allow *\"\n",
		"\tkey = AQ"+g.s(b64, 20)+"==", "keyring = /etc/ceph/ceph.client.admin.keyring")
	add("kubeadm-bootstrap-token", g.s("abcdefghijklmnopqrstuvwxyz0123456789", 6)+"."+g.s("abcdefghijklmnopqrstuvwxyz0123456789", 16),
		"kubeadm join 10.0.0.1:6443 --token ", " --discovery-token-ca-cert-hash sha256:"+g.s(hexd, 64)+"\n",
		"kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef", "token: ${BOOTSTRAP_TOKEN}", "version: 1.2.3456789012345678")
	add("curl-auth-header", g.s(alnum, 40), `curl -sS -H "Authorization: Bearer `, `" https://api.example.com/v1/items`+"\n",
		`curl -H "Authorization: Bearer $TOKEN" https://api.example.com`, `curl -H "Authorization: Bearer ${API_TOKEN}" https://x`,
		`curl -H "Authorization: Bearer <token>" https://x`)
	add("curl-auth-user", g.s(alnum, 14), "curl --fail -u deploy:", " https://artifacts.internal/upload\n",
		"curl -u admin:$ADMIN_PASSWORD https://x", `curl -u "$USER:$PASS" https://x`, "curl -u user:changeme https://x")
	add("url-credentials", g.s(alnum, 16), "DATABASE_URL=postgres://app:", "@db.internal:5432/app\n",
		"postgres://app:${DB_PASSWORD}@db:5432/app", "see https://github.com/acme/repo", "http://user:changeme@host/")
	add("generic-password", g.s(alnum, 16), `DB_PASSWORD="`, `"`,
		`password = request.form["password"]`, `DB_PASSWORD="changeme"`, "password: ${DB_PASSWORD}", "password: <password>",
		`password = "`+strings.Repeat("a", 16)+`"`, "self.password = password", "password: xxxxxxxxxxxx",
		"  #   htpasswd.auth_type = WEB"+"rick::HTTPAuth::DigestAuth")
	add("generic-secret", g.s(alnum, 24), "client_secret: ", "\n", "client_secret: xxxxxxxxxxxxxxxx", "secret_name: my-app-secret-name",
		"  secretKeyRef:", "client_secret = os.environ['CLIENT_SECRET']")
	add("generic-api-token", g.s(alnum, 32), "API_KEY=", "\n", "token = get_token()", "api_key: {{ .Values.apiKey }}",
		"ACCESS_KEY=$ACCESS_KEY", "token: YOUR_TOKEN_HERE",
		// Regressions from the false-positive corpus (/usr/lib/python3, /usr/share/perl).
		"            tokentype=Name.Function,", `    'Pod::Simple::PullParserEndToken'=> 'https://github.com/perl-pod/pod-simple/issues',`,
		`        access_token="2YotnFZFEjr1zCsicMWpAA",`)
	return cs
}

func TestEveryRuleHasCases(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range ruleCases() {
		covered[c.rule] = true
		if len(c.neg) == 0 {
			t.Errorf("%s: no negative case", c.rule)
		}
	}
	rules := BuiltinRules()
	if len(rules) < 40 {
		t.Errorf("only %d built-in rules, want at least 40", len(rules))
	}
	for _, r := range rules {
		if !covered[r.ID] {
			t.Errorf("rule %s has no test case", r.ID)
		}
	}
}

func findingIDs(fs []model.Finding) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	return ids
}

func TestRulesPositiveNegative(t *testing.T) {
	show, err := NewScanner(WithShowSecrets(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ruleCases() {
		t.Run(c.rule, func(t *testing.T) {
			fs := show.Scan("app/config.txt", []byte("line one\n"+c.text+"\nlast\n"))
			var got *model.Finding
			for i := range fs {
				if fs[i].ID == c.rule {
					got = &fs[i]
				}
			}
			if got == nil {
				t.Fatalf("positive: rule %s did not fire on %q; got %v", c.rule, c.text, findingIDs(fs))
			}
			if got.Evidence != c.secret {
				t.Errorf("secret = %q, want %q", got.Evidence, c.secret)
			}
			if got.Location.StartLine < 2 {
				t.Errorf("StartLine = %d, want >= 2", got.Location.StartLine)
			}
			if got.Kind != model.KindSecret || got.Category == "" || got.Severity == model.SeverityUnknown || len(got.Controls) == 0 {
				t.Errorf("incomplete finding %+v", got)
			}
			for _, n := range c.neg {
				for _, f := range show.Scan("app/config.txt", []byte(n)) {
					if f.ID == c.rule {
						t.Errorf("negative: rule %s fired on %q (evidence %q)", c.rule, n, f.Evidence)
					}
				}
			}
		})
	}
}

func TestRedactionNeverLeaks(t *testing.T) {
	s, err := NewScanner()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ruleCases() {
		fs := s.Scan("app/.env", []byte(c.text))
		if len(fs) == 0 {
			t.Errorf("%s: no finding", c.rule)
		}
		out, err := json.Marshal(fs)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{c.secret, strings.TrimSpace(c.secret)} {
			if strings.Contains(string(out), part) {
				t.Errorf("%s: raw secret in output %s", c.rule, out)
			}
		}
		for _, f := range fs {
			if f.ID == ruleK8sSecret.ID {
				continue // its evidence names the object and its keys, never values
			}
			if !strings.Contains(f.Evidence, "****(") {
				t.Errorf("%s: evidence %q not redacted", c.rule, f.Evidence)
			}
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"AKIA" + strings.Repeat("Z", 16): "AKIA****(20 chars)",
		"hunter2!":                       "h****(8 chars)",
		"abc":                            "****(3 chars)",
		"\nMIIEabcdefghijklmno":          "MII****(20 chars)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLineNumbersAndDedupe(t *testing.T) {
	s, err := NewScanner(WithShowSecrets(true))
	if err != nil {
		t.Fatal(err)
	}
	g := newGen()
	tok := "gh" + "p_" + g.s(alnum, 36)
	key := "AK" + "IA" + g.s(upper32, 16)
	text := "a\nb\nGITHUB_TOKEN=" + tok + "\nc\n\nid=" + key + "\n"
	fs := s.Scan("x", []byte(text))
	if len(fs) != 2 {
		t.Fatalf("got %d findings %v, want 2 (the GitHub token must not also be reported as a generic token)", len(fs), findingIDs(fs))
	}
	if fs[0].ID != "github-pat" || fs[0].Location.StartLine != 3 || fs[0].Location.EndLine != 3 {
		t.Errorf("first = %s line %d-%d", fs[0].ID, fs[0].Location.StartLine, fs[0].Location.EndLine)
	}
	if fs[1].ID != "aws-access-key-id" || fs[1].Location.StartLine != 6 {
		t.Errorf("second = %s line %d", fs[1].ID, fs[1].Location.StartLine)
	}
	// A PEM key spans lines.
	pemText, _ := g.pem("RSA PRIV"+"ATE KEY", 300)
	fs = s.Scan("k.pem", []byte("x\n"+pemText))
	if len(fs) != 1 || fs[0].Location.StartLine != 2 || fs[0].Location.EndLine <= fs[0].Location.StartLine {
		t.Errorf("pem findings %+v", fs)
	}
}

func TestKeywordWindowFallback(t *testing.T) {
	// More keyword lines than maxWindowsPerRule: the rule runs on the whole
	// file and still finds the secret at the end.
	s, err := NewScanner()
	if err != nil {
		t.Fatal(err)
	}
	g := newGen()
	var sb strings.Builder
	for i := 0; i < 5000; i++ {
		sb.WriteString("ask the task\n")
	}
	sb.WriteString("sid = S" + "K" + g.s(hexd, 32) + "\n")
	fs := s.Scan("x", []byte(sb.String()))
	if len(fs) != 1 || fs[0].ID != "twilio-api-key" || fs[0].Location.StartLine != 5001 {
		t.Fatalf("got %+v", fs)
	}
}
