package secret

import (
	"regexp"

	"mamori/internal/model"
)

// Regex fragments shared by the rules below. The token formats were
// checked against the vendors' documentation and the rule sets of gitleaks
// and trivy; the expressions are our own.
const (
	// assign is an assignment operator in code, config or YAML, with the
	// optional closing quote of the key before it.
	assign = `["']?\s*(?::=|=>|=|:)\s*`
	// openQ is an optional opening quote of the value.
	openQ = `["'\x60]?`
	// tail ends a value: a character that cannot continue it, or the end.
	tail = `(?:[^0-9A-Za-z_+/=-]|$)`
	// keyGap is what may sit between a vendor's name and the assignment
	// ("HEROKU_API_KEY", "mailgun.private-key").
	keyGap = `[\w.-]*`
)

// ctxRule builds the expression of a rule whose token has no distinctive
// prefix: the vendor's name must appear in the key of the assignment.
func ctxRule(key, value string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)(?:` + key + `)` + keyGap + assign + openQ + `(` + value + `)` + tail)
}

// tokRule builds the expression of a rule for a token with a distinctive
// prefix. The expression starts with the token itself so that the regexp
// engine can skip ahead to its literal prefix; that the token is not glued
// to a preceding letter or digit is checked by the scanner (see gluedLeft).
func tokRule(token string) *regexp.Regexp {
	return regexp.MustCompile(`(` + token + `)` + tail)
}

// pemKey builds a PEM private-key expression for one BEGIN label. The body
// may be JSON- or shell-escaped ("\n" sequences) and may carry RFC 1421
// headers (Proc-Type, DEK-Info).
func pemKey(label string) *regexp.Regexp {
	return regexp.MustCompile(`-----BEGIN ` + label + `-----((?:[A-Za-z0-9+/=:,.\- \t\r\n]|\\[nr])+?)-----END ` + label + `-----`)
}

const (
	catAWS       = "AWS"
	catGCP       = "Google"
	catAzure     = "Azure"
	catGitHub    = "GitHub"
	catGitLab    = "GitLab"
	catSlack     = "Slack"
	catKey       = "PrivateKey"
	catGeneric   = "Generic"
	catHashiCorp = "HashiCorp"
)

// BuiltinRules returns a fresh copy of the built-in rules, most specific
// first: on overlapping matches the rule listed first wins (see dedupe).
func BuiltinRules() []Rule {
	crit, high, med := model.SeverityCritical, model.SeverityHigh, model.SeverityMedium
	return []Rule{
		// --- Private keys (Critical) ---
		{ID: "private-key-rsa", Title: "RSA private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin rsa private key"}, Regex: pemKey(`RSA PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-ec", Title: "EC private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin ec private key"}, Regex: pemKey(`EC PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-dsa", Title: "DSA private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin dsa private key"}, Regex: pemKey(`DSA PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-openssh", Title: "OpenSSH private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin openssh private key"}, Regex: pemKey(`OPENSSH PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-pkcs8", Title: "PKCS#8 private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin private key"}, Regex: pemKey(`PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-pkcs8-encrypted", Title: "Encrypted PKCS#8 private key", Category: catKey, Severity: high, Multiline: true,
			Description: "An encrypted private key; its passphrase may be in the image too.",
			Keywords:    []string{"begin encrypted private key"}, Regex: pemKey(`ENCRYPTED PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-pgp", Title: "PGP private key block", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin pgp private key block"}, Regex: pemKey(`PGP PRIVATE KEY BLOCK`), MinLength: 64},
		{ID: "private-key-putty", Title: "PuTTY private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"putty-user-key-file-"},
			Regex:    regexp.MustCompile(`PuTTY-User-Key-File-\d: [\w-]+\r?\n(?:.*\r?\n){1,40}?Private-Lines: \d+\r?\n((?:[A-Za-z0-9+/=]+\r?\n)+)`), MinLength: 32},
		{ID: "age-secret-key", Title: "age secret key", Category: catKey, Severity: crit,
			Keywords: []string{"age-secret-key-1"}, Regex: tokRule(`AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`)},

		// --- Cloud providers (Critical) ---
		{ID: "aws-access-key-id", Title: "AWS access key ID", Category: catAWS, Severity: crit,
			Keywords: []string{"akia", "asia", "abia", "acca", "a3t"},
			Regex:    tokRule(`(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}`)},
		{ID: "aws-secret-access-key", Title: "AWS secret access key", Category: catAWS, Severity: crit,
			Keywords: []string{"aws"}, MinEntropy: 3.5, Assignment: true,
			Regex: regexp.MustCompile(`(?i)aws_?(?:secret_?)?(?:access_?)?key` + assign + openQ + `([A-Za-z0-9/+=]{40})` + tail)},
		{ID: "gcp-service-account-key", Title: "Google Cloud service account key", Category: catGCP, Severity: crit, Multiline: true,
			Keywords: []string{"service_account"},
			Requires: regexp.MustCompile(`"type"\s*:\s*"service_account"`),
			Regex:    regexp.MustCompile(`"private_key"\s*:\s*"(-----BEGIN (?:RSA )?PRIVATE KEY-----[A-Za-z0-9+/=\\\s]{64,}?-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)"`)},
		{ID: "gcp-api-key", Title: "Google API key", Category: catGCP, Severity: high,
			Keywords: []string{"aiza"}, Regex: tokRule(`AIza[0-9A-Za-z_-]{35}`)},
		{ID: "gcp-oauth-client-secret", Title: "Google OAuth client secret", Category: catGCP, Severity: high,
			Keywords: []string{"gocspx-"}, Regex: tokRule(`GOCSPX-[0-9A-Za-z_-]{28}`)},
		{ID: "azure-storage-account-key", Title: "Azure storage account key", Category: catAzure, Severity: crit,
			Keywords: []string{"accountkey"}, Assignment: true, Regex: regexp.MustCompile(`(?i)AccountKey\s*=\s*([A-Za-z0-9+/]{86}==)`)},
		{ID: "azure-ad-client-secret", Title: "Azure AD (Entra ID) client secret", Category: catAzure, Severity: crit,
			Keywords: []string{"q~"}, Lookbehind: 5, Regex: regexp.MustCompile(`(?:^|[\s"'\x60=:(,>])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?:$|[\s"'\x60<),;])`)},
		{ID: "alibaba-access-key-id", Title: "Alibaba Cloud AccessKey ID", Category: "Alibaba", Severity: crit,
			Keywords: []string{"ltai"}, Regex: tokRule(`LTAI[0-9A-Za-z]{12,20}`)},
		{ID: "digitalocean-token", Title: "DigitalOcean token", Category: "DigitalOcean", Severity: crit,
			Keywords: []string{"dop_v1_", "doo_v1_", "dor_v1_"}, Regex: tokRule(`do[opr]_v1_[a-f0-9]{64}`)},
		{ID: "heroku-api-key", Title: "Heroku API key", Category: "Heroku", Severity: high,
			Keywords: []string{"heroku"}, Assignment: true, Regex: ctxRule(`heroku`, `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)},
		{ID: "heroku-api-key-v2", Title: "Heroku API key", Category: "Heroku", Severity: high,
			Keywords: []string{"hrku-"}, Regex: tokRule(`HRKU-[0-9A-Za-z_-]{60}`)},

		// --- Source forges and package registries (High) ---
		{ID: "github-pat", Title: "GitHub personal access token", Category: catGitHub, Severity: high,
			Keywords: []string{"ghp_"}, Regex: tokRule(`ghp_[0-9A-Za-z]{36}`)},
		{ID: "github-fine-grained-pat", Title: "GitHub fine-grained personal access token", Category: catGitHub, Severity: high,
			Keywords: []string{"github_pat_"}, Regex: tokRule(`github_pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{59}`)},
		{ID: "github-oauth-token", Title: "GitHub OAuth access token", Category: catGitHub, Severity: high,
			Keywords: []string{"gho_"}, Regex: tokRule(`gho_[0-9A-Za-z]{36}`)},
		{ID: "github-user-to-server-token", Title: "GitHub App user-to-server token", Category: catGitHub, Severity: high,
			Keywords: []string{"ghu_"}, Regex: tokRule(`ghu_[0-9A-Za-z]{36}`)},
		{ID: "github-server-to-server-token", Title: "GitHub App installation token", Category: catGitHub, Severity: high,
			Keywords: []string{"ghs_"}, Regex: tokRule(`ghs_[0-9A-Za-z]{36}`)},
		{ID: "github-refresh-token", Title: "GitHub refresh token", Category: catGitHub, Severity: high,
			Keywords: []string{"ghr_"}, Regex: tokRule(`ghr_[0-9A-Za-z]{36,76}`)},
		{ID: "gitlab-pat", Title: "GitLab personal access token", Category: catGitLab, Severity: high,
			Keywords: []string{"glpat-"}, Regex: tokRule(`glpat-[0-9A-Za-z_.-]{20,100}`)},
		{ID: "gitlab-pipeline-trigger-token", Title: "GitLab pipeline trigger token", Category: catGitLab, Severity: high,
			Keywords: []string{"glptt-"}, Regex: tokRule(`glptt-[0-9a-f]{40}`)},
		{ID: "gitlab-runner-token", Title: "GitLab runner token", Category: catGitLab, Severity: high,
			Keywords: []string{"glrt-", "gr1348941"}, Regex: tokRule(`(?:glrt-[0-9A-Za-z_-]{20,}|GR1348941[0-9A-Za-z_-]{20})`)},
		{ID: "gitlab-deploy-token", Title: "GitLab deploy token", Category: catGitLab, Severity: high,
			Keywords: []string{"gldt-"}, Regex: tokRule(`gldt-[0-9A-Za-z_-]{20,}`)},
		{ID: "bitbucket-client-secret", Title: "Bitbucket client secret or app password", Category: "Bitbucket", Severity: high,
			Keywords: []string{"bitbucket"}, MinEntropy: 3.5,
			Assignment: true, Regex: ctxRule(`bitbucket`, `[0-9A-Za-z_=-]{64}|[0-9A-Za-z]{32}|ATBB[0-9A-Za-z_=-]{28,60}`)},
		{ID: "atlassian-api-token", Title: "Atlassian API token", Category: "Atlassian", Severity: high,
			Keywords: []string{"atatt3"}, Regex: tokRule(`ATATT3[0-9A-Za-z_=-]{150,250}`)},
		{ID: "atlassian-api-token-legacy", Title: "Atlassian (Jira/Confluence) API token", Category: "Atlassian", Severity: high,
			Keywords: []string{"atlassian", "confluence", "jira"}, MinEntropy: 3.5,
			Assignment: true, Regex: ctxRule(`atlassian|confluence|jira`, `[0-9A-Za-z]{24}`)},
		{ID: "npm-access-token", Title: "npm access token", Category: "npm", Severity: high,
			Keywords: []string{"npm_"}, Regex: tokRule(`npm_[0-9A-Za-z]{36}`)},
		{ID: "npmrc-auth-token", Title: "npm registry credential in .npmrc", Category: "npm", Severity: high,
			Keywords: []string{"_auth", "_password"}, Placeholders: true, MinLength: 8,
			// .npmrc keys stand at the start of a line or after the
			// registry's "//host/:" scope, never inside an identifier
			// (proxy_auth = ...): one byte of look-behind checks that.
			Lookbehind: 1, Regex: regexp.MustCompile(`(?:^|[:\s])_(?:authToken|auth|password)\s*=\s*["']?([^\s"']+)`)},
		{ID: "pypi-upload-token", Title: "PyPI upload token", Category: "PyPI", Severity: high,
			Keywords: []string{"pypi-ageicHlwaS5vcmc", "pypi-agendgvzdc5wexbplm9yzw"},
			Regex:    tokRule(`pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[0-9A-Za-z_-]{50,}`)},
		{ID: "rubygems-api-key", Title: "RubyGems API key", Category: "RubyGems", Severity: high,
			Keywords: []string{"rubygems_"}, Regex: tokRule(`rubygems_[a-f0-9]{48}`)},
		{ID: "docker-config-auth", Title: "Registry credential in Docker config.json", Category: "Docker", Severity: high, Multiline: true,
			Keywords: []string{"auths"}, Requires: regexp.MustCompile(`"auths"\s*:\s*\{`),
			Regex: regexp.MustCompile(`"(?:auth|identitytoken|password)"\s*:\s*"([A-Za-z0-9+/=_.-]{8,})"`)},
		{ID: "kubernetes-dockerconfigjson", Title: "Registry credential in a Kubernetes image pull secret", Category: "Docker", Severity: high,
			Keywords: []string{".dockerconfigjson", ".dockercfg"},
			Regex:    regexp.MustCompile(`(?i)\.docker(?:configjson|cfg)"?\s*:\s*["']?((?:ey|ew)[A-Za-z0-9+/=]{20,})`)},

		// --- SaaS tokens (High) ---
		{ID: "slack-bot-token", Title: "Slack bot token", Category: catSlack, Severity: high,
			Keywords: []string{"xoxb-"}, Regex: tokRule(`xoxb-[0-9]{8,14}-[0-9]{8,14}-[0-9A-Za-z]{20,40}`)},
		{ID: "slack-user-token", Title: "Slack user or legacy token", Category: catSlack, Severity: high,
			Keywords: []string{"xoxp-", "xoxa-", "xoxo-", "xoxs-", "xoxr-", "xoxe-"},
			Regex:    tokRule(`xox[paosre]-(?:[0-9]{8,14}-){1,3}[0-9A-Za-z]{20,64}`)},
		{ID: "slack-app-token", Title: "Slack app-level token", Category: catSlack, Severity: high,
			Keywords: []string{"xapp-"}, Regex: tokRule(`xapp-\d-[0-9A-Z]{9,12}-\d{10,14}-[0-9a-f]{60,70}`)},
		{ID: "slack-webhook-url", Title: "Slack incoming webhook URL", Category: catSlack, Severity: med,
			Keywords: []string{"hooks.slack.com"}, Lookbehind: len("https://"),
			Regex: regexp.MustCompile(`(https?://hooks\.slack\.com/(?:services|workflows|triggers)/[0-9A-Za-z+/_-]{40,100})`)},
		{ID: "stripe-secret-key", Title: "Stripe live secret key", Category: "Stripe", Severity: crit,
			Keywords: []string{"sk_live_"}, Regex: tokRule(`sk_live_[0-9A-Za-z]{24,99}`)},
		{ID: "stripe-restricted-key", Title: "Stripe live restricted key", Category: "Stripe", Severity: high,
			Keywords: []string{"rk_live_"}, Regex: tokRule(`rk_live_[0-9A-Za-z]{24,99}`)},
		{ID: "twilio-api-key", Title: "Twilio API key SID", Category: "Twilio", Severity: high,
			Keywords: []string{"sk"}, Regex: tokRule(`SK[0-9a-f]{32}`)},
		{ID: "twilio-account-sid", Title: "Twilio account SID with credentials context", Category: "Twilio", Severity: med,
			Keywords: []string{"twilio"}, Assignment: true, Regex: ctxRule(`twilio`, `AC[0-9a-f]{32}`)},
		{ID: "sendgrid-api-key", Title: "SendGrid API key", Category: "SendGrid", Severity: high,
			Keywords: []string{"sg."}, Regex: tokRule(`SG\.[0-9A-Za-z_-]{22}\.[0-9A-Za-z_-]{43}`)},
		{ID: "mailgun-api-key", Title: "Mailgun API or signing key", Category: "Mailgun", Severity: high,
			Keywords: []string{"mailgun"}, Assignment: true, Regex: ctxRule(`mailgun`, `(?:pub)?key-[0-9a-f]{32}|[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}`)},
		{ID: "mailchimp-api-key", Title: "Mailchimp API key", Category: "Mailchimp", Severity: high,
			Keywords: []string{"-us"}, Lookbehind: 32, Regex: tokRule(`[0-9a-f]{32}-us[0-9]{1,2}`)},
		{ID: "sendinblue-api-key", Title: "Brevo (Sendinblue) API key", Category: "Brevo", Severity: high,
			Keywords: []string{"xkeysib-"}, Regex: tokRule(`xkeysib-[a-f0-9]{64}-[0-9A-Za-z]{16}`)},
		{ID: "shopify-token", Title: "Shopify access token or shared secret", Category: "Shopify", Severity: high,
			Keywords: []string{"shpat_", "shpca_", "shppa_", "shpss_"}, Regex: tokRule(`shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}`)},
		{ID: "square-access-token", Title: "Square access token", Category: "Square", Severity: high,
			Keywords: []string{"eaaa", "sq0atp-", "sq0csp-"}, Regex: tokRule(`(?:EAAA[0-9A-Za-z_-]{60}|sq0(?:atp|csp)-[0-9A-Za-z_-]{22,43})`)},
		{ID: "databricks-token", Title: "Databricks personal access token", Category: "Databricks", Severity: high,
			Keywords: []string{"dapi"}, Regex: tokRule(`dapi[a-f0-9]{32}(?:-\d)?`)},
		{ID: "okta-api-token", Title: "Okta API token", Category: "Okta", Severity: high,
			Keywords: []string{"okta"}, MinEntropy: 3.5, Assignment: true, Regex: ctxRule(`okta`, `00[0-9A-Za-z_-]{40}`)},
		{ID: "vault-service-token", Title: "HashiCorp Vault token", Category: catHashiCorp, Severity: high,
			Keywords: []string{"hvs.", "hvb."}, Regex: tokRule(`hv[sb]\.[0-9A-Za-z_-]{24,}`)},
		{ID: "vault-token-legacy", Title: "HashiCorp Vault token (legacy s. format)", Category: catHashiCorp, Severity: high,
			Keywords: []string{"vault"}, MinEntropy: 3.5, Assignment: true, Regex: ctxRule(`vault`, `s\.[0-9A-Za-z]{24}`)},
		{ID: "terraform-cloud-token", Title: "Terraform Cloud / HCP API token", Category: catHashiCorp, Severity: high,
			Keywords: []string{".atlasv1."}, Lookbehind: 14, Regex: tokRule(`[0-9A-Za-z]{14}\.atlasv1\.[0-9A-Za-z_=-]{60,70}`)},
		{ID: "grafana-token", Title: "Grafana cloud or service account token", Category: "Grafana", Severity: high,
			Keywords: []string{"glc_", "glsa_"}, Regex: tokRule(`(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})`)},
		{ID: "new-relic-api-key", Title: "New Relic user API key", Category: "NewRelic", Severity: high,
			Keywords: []string{"nrak-"}, Regex: tokRule(`NRAK-[0-9A-Z]{27}`)},
		{ID: "linear-api-key", Title: "Linear API key", Category: "Linear", Severity: high,
			Keywords: []string{"lin_api_"}, Regex: tokRule(`lin_api_[0-9A-Za-z]{40}`)},
		{ID: "postman-api-key", Title: "Postman API key", Category: "Postman", Severity: high,
			Keywords: []string{"pmak-"}, Regex: tokRule(`PMAK-[a-f0-9]{24}-[a-f0-9]{34}`)},
		{ID: "pulumi-access-token", Title: "Pulumi access token", Category: "Pulumi", Severity: high,
			Keywords: []string{"pul-"}, Regex: tokRule(`pul-[a-f0-9]{40}`)},
		{ID: "doppler-token", Title: "Doppler token", Category: "Doppler", Severity: high,
			Keywords: []string{"dp.pt.", "dp.st."}, Regex: tokRule(`dp\.(?:pt|st)\.[0-9A-Za-z]{40,44}`)},
		{ID: "dynatrace-token", Title: "Dynatrace API token", Category: "Dynatrace", Severity: high,
			Keywords: []string{"dt0c01."}, Regex: tokRule(`dt0c01\.[0-9A-Z]{24}\.[0-9A-Z]{64}`)},
		{ID: "planetscale-token", Title: "PlanetScale password or token", Category: "PlanetScale", Severity: high,
			Keywords: []string{"pscale_"}, Regex: tokRule(`pscale_(?:pw|tkn|oauth)_[0-9A-Za-z_.-]{32,64}`)},
		{ID: "openai-api-key", Title: "OpenAI API key", Category: "OpenAI", Severity: high,
			Keywords: []string{"sk-"}, Regex: tokRule(`sk-(?:proj-|svcacct-|admin-)?[0-9A-Za-z_-]{20,}T3BlbkFJ[0-9A-Za-z_-]{20,}`)},
		{ID: "anthropic-api-key", Title: "Anthropic API key", Category: "Anthropic", Severity: high,
			Keywords: []string{"sk-ant-"}, Regex: tokRule(`sk-ant-(?:api03|admin01)-[0-9A-Za-z_-]{90,}`)},
		{ID: "huggingface-token", Title: "Hugging Face access token", Category: "HuggingFace", Severity: high,
			Keywords: []string{"hf_"}, MinEntropy: 3.5, Regex: tokRule(`hf_[A-Za-z]{34}`)},
		{ID: "jwt", Title: "JSON Web Token", Category: "JWT", Severity: med,
			Description: "A signed JSON Web Token; it may grant access until it expires.",
			Keywords:    []string{"eyj"},
			Regex:       tokRule(`eyJ[0-9A-Za-z_-]{10,}={0,2}\.eyJ[0-9A-Za-z_-]{10,}={0,2}\.[0-9A-Za-z_-]{16,}={0,2}`)},

		// --- Generic (Medium) ---
		{ID: "url-credentials", Title: "Password in a URL", Category: catGeneric, Severity: med,
			Keywords: []string{"://"}, Placeholders: true, MinLength: 6, MinEntropy: 2.5,
			MaxLength: 128,
			Regex:     regexp.MustCompile(`://[^\s:@/"'<>]+:([^\s:@/"'<>]+)@[0-9A-Za-z.-]+`)},
		{ID: "generic-password", Title: "Hard-coded password", Category: catGeneric, Severity: med,
			Keywords:     []string{"passwd", "password", "pwd", "pass="},
			Placeholders: true, MinLength: 8, MaxLength: 128, MinEntropy: 3.0, Assignment: true, Regex: genericRule(`passwd|password|pwd|pass`)},
		{ID: "generic-secret", Title: "Hard-coded secret", Category: catGeneric, Severity: med,
			Keywords: []string{"secret"}, Placeholders: true, MinLength: 10, MaxLength: 128, MinEntropy: 3.3, Assignment: true, Regex: genericRule(`secret`)},
		{ID: "generic-api-token", Title: "Hard-coded API key or token", Category: catGeneric, Severity: med,
			Keywords:     []string{"token", "api_key", "apikey", "api-key", "access_key", "accesskey", "auth_key"},
			Placeholders: true, MinLength: 12, MaxLength: 128, MinEntropy: 3.3,
			Assignment: true, Regex: genericRule(`token|api[_-]?key|access[_-]?key|auth[_-]?key`)},
	}
}

// genericRule builds an assignment rule for key words with no vendor
// format: the key must contain one of words; the value is either quoted,
// or an unquoted word that ends the line (KEY=value, key: value, export
// KEY=value). Unquoted values followed by more program text
// ("token = get_token()") are not matched. The match starts at the key
// word, where the keyword prefilter found it.
func genericRule(words string) *regexp.Regexp {
	key := `(?:` + words + `)[\w.-]*`
	val := `[0-9A-Za-z!#%&*+,./:;=?@^_~-]+`
	// An unquoted value ending in , or ; is an argument or statement in
	// program text, not a config value.
	unquoted := `[0-9A-Za-z!#%&*+./:=?@^_~-]+`
	return regexp.MustCompile(`(?i)` + key + `(?:` +
		`["']?\s*(?::=|=>|==?|:)\s*(?:"(` + val + `)"|'(` + val + `)')` +
		`|\s*[=:]\s*(` + unquoted + `)\s*$)`)
}

// builtinAllowRules returns allow rules for well-known non-secrets.
func builtinAllowRules() []*AllowRule {
	return []*AllowRule{
		// RFC 7519 §3.1's example token and jwt.io's default token appear in
		// countless documentation files.
		// RFC 6749 (OAuth 2.0) and RFC 5849 (OAuth 1.0) example tokens,
		// quoted in the docstrings of every OAuth library.
		{ID: "oauth-rfc-examples", Description: "example tokens of RFC 6749 and RFC 5849",
			Regex: regexp.MustCompile(`^(?:2YotnFZFEjr1zCsicMWpAA|tGzv3JOkF0XG5Qx2TlKWIA|ad180jjd733klru7|hh5s93j4hdidpola|hdk48Djdsa|kd94hf93k423kf44|pfkkdhi9sl3r4s00|nnch734d00sl2jdk|SplxlOBeZQQYbYS6WxSbIA|8xLOxBtZp8|dkkd30irkd83kd93)$`)},
		{ID: "jwt-io-example", Description: "jwt.io and RFC 7519 example tokens",
			Regex: regexp.MustCompile(`^eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9\.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ\.`)},
	}
}
