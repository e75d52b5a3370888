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
		{ID: "private-key-rsa", Peers: []string{"gitleaks:private-key", "trivy:private-key"}, Title: "RSA private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin rsa private key"}, Regex: pemKey(`RSA PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-ec", Peers: []string{"gitleaks:private-key", "trivy:private-key"}, Title: "EC private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin ec private key"}, Regex: pemKey(`EC PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-dsa", Peers: []string{"gitleaks:private-key", "trivy:private-key"}, Title: "DSA private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin dsa private key"}, Regex: pemKey(`DSA PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-openssh", Peers: []string{"gitleaks:private-key", "trivy:private-key"}, Title: "OpenSSH private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin openssh private key"}, Regex: pemKey(`OPENSSH PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-pkcs8", Peers: []string{"gitleaks:private-key", "trivy:private-key"}, Title: "PKCS#8 private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin private key"}, Regex: pemKey(`PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-pkcs8-encrypted", Peers: []string{"gitleaks:private-key", "trivy:private-key"}, Title: "Encrypted PKCS#8 private key", Category: catKey, Severity: high, Multiline: true,
			Description: "An encrypted private key; its passphrase may be in the image too.",
			Keywords:    []string{"begin encrypted private key"}, Regex: pemKey(`ENCRYPTED PRIVATE KEY`), MinLength: 64},
		{ID: "private-key-pgp", Peers: []string{"gitleaks:private-key", "trivy:private-key"}, Title: "PGP private key block", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"begin pgp private key block"}, Regex: pemKey(`PGP PRIVATE KEY BLOCK`), MinLength: 64},
		{ID: "private-key-putty", Title: "PuTTY private key", Category: catKey, Severity: crit, Multiline: true,
			Keywords: []string{"putty-user-key-file-"},
			Regex:    regexp.MustCompile(`PuTTY-User-Key-File-\d: [\w-]+\r?\n(?:.*\r?\n){1,40}?Private-Lines: \d+\r?\n((?:[A-Za-z0-9+/=]+\r?\n)+)`), MinLength: 32},
		{ID: "age-secret-key", Peers: []string{"gitleaks:age-secret-key", "trivy:age-secret-key"}, Title: "age secret key", Category: catKey, Severity: crit,
			Keywords: []string{"age-secret-key-1"}, Regex: tokRule(`AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`)},

		// --- Cloud providers (Critical) ---
		{ID: "aws-access-key-id", Peers: []string{"gitleaks:aws-access-token", "trivy:aws-access-key-id"}, Title: "AWS access key ID", Category: catAWS, Severity: crit,
			Keywords: []string{"akia", "asia", "abia", "acca", "a3t"},
			Regex:    tokRule(`(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}`)},
		{ID: "aws-secret-access-key", Peers: []string{"trivy:aws-secret-access-key"}, Title: "AWS secret access key", Category: catAWS, Severity: crit,
			Keywords: []string{"aws"}, MinEntropy: 3.5, Assignment: true,
			Regex: regexp.MustCompile(`(?i)aws_?(?:secret_?)?(?:access_?)?key` + assign + openQ + `([A-Za-z0-9/+=]{40})` + tail)},
		{ID: "gcp-service-account-key", Peers: []string{"gitleaks:private-key", "trivy:gcp-service-account"}, Title: "Google Cloud service account key", Category: catGCP, Severity: crit, Multiline: true,
			Keywords: []string{"service_account"},
			Requires: regexp.MustCompile(`"type"\s*:\s*"service_account"`),
			Regex:    regexp.MustCompile(`"private_key"\s*:\s*"(-----BEGIN (?:RSA )?PRIVATE KEY-----[A-Za-z0-9+/=\\\s]{64,}?-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)"`)},
		{ID: "gcp-api-key", Peers: []string{"gitleaks:gcp-api-key"}, Title: "Google API key", Category: catGCP, Severity: high,
			Keywords: []string{"aiza"}, Regex: tokRule(`AIza[0-9A-Za-z_-]{35}`)},
		{ID: "gcp-oauth-client-secret", Title: "Google OAuth client secret", Category: catGCP, Severity: high,
			Keywords: []string{"gocspx-"}, Regex: tokRule(`GOCSPX-[0-9A-Za-z_-]{28}`)},
		{ID: "azure-storage-account-key", Title: "Azure storage account key", Category: catAzure, Severity: crit,
			Keywords: []string{"accountkey"}, Assignment: true, Regex: regexp.MustCompile(`(?i)AccountKey\s*=\s*([A-Za-z0-9+/]{86}==)`)},
		{ID: "azure-ad-client-secret", Peers: []string{"gitleaks:azure-ad-client-secret"}, Title: "Azure AD (Entra ID) client secret", Category: catAzure, Severity: crit,
			Keywords: []string{"q~"}, Lookbehind: 5, Regex: regexp.MustCompile(`(?:^|[\s"'\x60=:(,>])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?:$|[\s"'\x60<),;])`)},
		{ID: "alibaba-access-key-id", Peers: []string{"gitleaks:alibaba-access-key-id", "trivy:alibaba-access-key-id"}, Title: "Alibaba Cloud AccessKey ID", Category: "Alibaba", Severity: crit,
			Keywords: []string{"ltai"}, Regex: tokRule(`LTAI[0-9A-Za-z]{12,20}`)},
		{ID: "digitalocean-token", Peers: []string{"gitleaks:digitalocean-pat", "gitleaks:digitalocean-access-token", "gitleaks:digitalocean-refresh-token"}, Title: "DigitalOcean token", Category: "DigitalOcean", Severity: crit,
			Keywords: []string{"dop_v1_", "doo_v1_", "dor_v1_"}, Regex: tokRule(`do[opr]_v1_[a-f0-9]{64}`)},
		{ID: "heroku-api-key", Peers: []string{"gitleaks:heroku-api-key", "trivy:heroku-api-key"}, Title: "Heroku API key", Category: "Heroku", Severity: high,
			Keywords: []string{"heroku"}, Assignment: true, Regex: ctxRule(`heroku`, `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)},
		{ID: "heroku-api-key-v2", Peers: []string{"gitleaks:heroku-api-key-v2"}, Title: "Heroku API key", Category: "Heroku", Severity: high,
			Keywords: []string{"hrku-"}, Regex: tokRule(`HRKU-[0-9A-Za-z_-]{60}`)},

		// --- Source forges and package registries (High) ---
		{ID: "github-pat", Peers: []string{"gitleaks:github-pat", "trivy:github-pat"}, Title: "GitHub personal access token", Category: catGitHub, Severity: high,
			Keywords: []string{"ghp_"}, Regex: tokRule(`ghp_[0-9A-Za-z]{36}`)},
		{ID: "github-fine-grained-pat", Peers: []string{"gitleaks:github-fine-grained-pat", "trivy:github-fine-grained-pat"}, Title: "GitHub fine-grained personal access token", Category: catGitHub, Severity: high,
			Keywords: []string{"github_pat_"}, Regex: tokRule(`github_pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{59}`)},
		{ID: "github-oauth-token", Peers: []string{"gitleaks:github-oauth", "trivy:github-oauth"}, Title: "GitHub OAuth access token", Category: catGitHub, Severity: high,
			Keywords: []string{"gho_"}, Regex: tokRule(`gho_[0-9A-Za-z]{36}`)},
		{ID: "github-user-to-server-token", Peers: []string{"gitleaks:github-app-token", "trivy:github-app-token"}, Title: "GitHub App user-to-server token", Category: catGitHub, Severity: high,
			Keywords: []string{"ghu_"}, Regex: tokRule(`ghu_[0-9A-Za-z]{36}`)},
		{ID: "github-server-to-server-token", Peers: []string{"gitleaks:github-app-token", "trivy:github-app-token"}, Title: "GitHub App installation token", Category: catGitHub, Severity: high,
			Keywords: []string{"ghs_"}, Regex: tokRule(`ghs_[0-9A-Za-z]{36}`)},
		{ID: "github-refresh-token", Peers: []string{"gitleaks:github-refresh-token", "trivy:github-refresh-token"}, Title: "GitHub refresh token", Category: catGitHub, Severity: high,
			Keywords: []string{"ghr_"}, Regex: tokRule(`ghr_[0-9A-Za-z]{36,76}`)},
		{ID: "gitlab-pat", Peers: []string{"gitleaks:gitlab-pat", "trivy:gitlab-pat"}, Title: "GitLab personal access token", Category: catGitLab, Severity: high,
			Keywords: []string{"glpat-"}, Regex: tokRule(`glpat-[0-9A-Za-z_.-]{20,100}`)},
		{ID: "gitlab-pipeline-trigger-token", Peers: []string{"gitleaks:gitlab-ptt"}, Title: "GitLab pipeline trigger token", Category: catGitLab, Severity: high,
			Keywords: []string{"glptt-"}, Regex: tokRule(`glptt-[0-9a-f]{40}`)},
		{ID: "gitlab-runner-token", Peers: []string{"gitleaks:gitlab-rrt"}, Title: "GitLab runner token", Category: catGitLab, Severity: high,
			Keywords: []string{"glrt-", "gr1348941"}, Regex: tokRule(`(?:glrt-[0-9A-Za-z_-]{20,}|GR1348941[0-9A-Za-z_-]{20})`)},
		{ID: "gitlab-deploy-token", Peers: []string{"gitleaks:gitlab-deploy-token"}, Title: "GitLab deploy token", Category: catGitLab, Severity: high,
			Keywords: []string{"gldt-"}, Regex: tokRule(`gldt-[0-9A-Za-z_-]{20,}`)},
		{ID: "bitbucket-client-secret", Peers: []string{"gitleaks:bitbucket-client-secret", "trivy:bitbucket-client-secret"}, Title: "Bitbucket client secret or app password", Category: "Bitbucket", Severity: high,
			Keywords: []string{"bitbucket"}, MinEntropy: 3.5,
			Assignment: true, Regex: ctxRule(`bitbucket`, `[0-9A-Za-z_=-]{64}|[0-9A-Za-z]{32}|ATBB[0-9A-Za-z_=-]{28,60}`)},
		{ID: "atlassian-api-token", Peers: []string{"gitleaks:atlassian-api-token", "trivy:atlassian-api-token"}, Title: "Atlassian API token", Category: "Atlassian", Severity: high,
			Keywords: []string{"atatt3"}, Regex: tokRule(`ATATT3[0-9A-Za-z_=-]{150,250}`)},
		{ID: "atlassian-api-token-legacy", Title: "Atlassian (Jira/Confluence) API token", Category: "Atlassian", Severity: high,
			Keywords: []string{"atlassian", "confluence", "jira"}, MinEntropy: 3.5,
			Assignment: true, Regex: ctxRule(`atlassian|confluence|jira`, `[0-9A-Za-z]{24}`)},
		{ID: "npm-access-token", Peers: []string{"gitleaks:npm-access-token", "trivy:npm-access-token"}, Title: "npm access token", Category: "npm", Severity: high,
			Keywords: []string{"npm_"}, Regex: tokRule(`npm_[0-9A-Za-z]{36}`)},
		{ID: "npmrc-auth-token", Title: "npm registry credential in .npmrc", Category: "npm", Severity: high,
			Keywords: []string{"_auth", "_password"}, Placeholders: true, MinLength: 8,
			// .npmrc keys stand at the start of a line or after the
			// registry's "//host/:" scope, never inside an identifier
			// (proxy_auth = ...): one byte of look-behind checks that.
			Lookbehind: 1, Regex: regexp.MustCompile(`(?:^|[:\s])_(?:authToken|auth|password)\s*=\s*["']?([^\s"']+)`)},
		{ID: "pypi-upload-token", Peers: []string{"gitleaks:pypi-upload-token", "trivy:pypi-upload-token"}, Title: "PyPI upload token", Category: "PyPI", Severity: high,
			Keywords: []string{"pypi-ageicHlwaS5vcmc", "pypi-agendgvzdc5wexbplm9yzw"},
			Regex:    tokRule(`pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[0-9A-Za-z_-]{50,}`)},
		{ID: "rubygems-api-key", Peers: []string{"gitleaks:rubygems-api-token", "trivy:rubygems-api-token"}, Title: "RubyGems API key", Category: "RubyGems", Severity: high,
			Keywords: []string{"rubygems_"}, Regex: tokRule(`rubygems_[a-f0-9]{48}`)},
		{ID: "docker-config-auth", Title: "Registry credential in Docker config.json", Category: "Docker", Severity: high, Multiline: true,
			Keywords: []string{"auths"}, Requires: regexp.MustCompile(`"auths"\s*:\s*\{`),
			Regex: regexp.MustCompile(`"(?:auth|identitytoken|password)"\s*:\s*"([A-Za-z0-9+/=_.-]{8,})"`)},
		{ID: "kubernetes-dockerconfigjson", Peers: []string{"trivy:dockerconfig-secret"}, Title: "Registry credential in a Kubernetes image pull secret", Category: "Docker", Severity: high,
			Keywords: []string{".dockerconfigjson", ".dockercfg"},
			Regex:    regexp.MustCompile(`(?i)\.docker(?:configjson|cfg)"?\s*:\s*["']?((?:ey|ew)[A-Za-z0-9+/=]{20,})`)},

		// --- SaaS tokens (High) ---
		{ID: "slack-bot-token", Peers: []string{"gitleaks:slack-bot-token", "trivy:slack-access-token"}, Title: "Slack bot token", Category: catSlack, Severity: high,
			Keywords: []string{"xoxb-"}, Regex: tokRule(`xoxb-[0-9]{8,14}-[0-9]{8,14}-[0-9A-Za-z]{20,40}`)},
		{ID: "slack-user-token", Peers: []string{"gitleaks:slack-user-token", "trivy:slack-access-token"}, Title: "Slack user or legacy token", Category: catSlack, Severity: high,
			Keywords: []string{"xoxp-", "xoxa-", "xoxo-", "xoxs-", "xoxr-", "xoxe-"},
			Regex:    tokRule(`xox[paosre]-(?:[0-9]{8,14}-){1,3}[0-9A-Za-z]{20,64}`)},
		{ID: "slack-app-token", Peers: []string{"gitleaks:slack-app-token"}, Title: "Slack app-level token", Category: catSlack, Severity: high,
			Keywords: []string{"xapp-"}, Regex: tokRule(`xapp-\d-[0-9A-Z]{9,12}-\d{10,14}-[0-9a-f]{60,70}`)},
		{ID: "slack-webhook-url", Peers: []string{"gitleaks:slack-webhook-url", "trivy:slack-web-hook"}, Title: "Slack incoming webhook URL", Category: catSlack, Severity: med,
			Keywords: []string{"hooks.slack.com"}, Lookbehind: len("https://"),
			Regex: regexp.MustCompile(`(https?://hooks\.slack\.com/(?:services|workflows|triggers)/[0-9A-Za-z+/_-]{40,100})`)},
		{ID: "stripe-secret-key", Peers: []string{"gitleaks:stripe-access-token", "trivy:stripe-secret-token"}, Title: "Stripe live secret key", Category: "Stripe", Severity: crit,
			Keywords: []string{"sk_live_"}, Regex: tokRule(`sk_live_[0-9A-Za-z]{24,99}`)},
		{ID: "stripe-restricted-key", Title: "Stripe live restricted key", Category: "Stripe", Severity: high,
			Keywords: []string{"rk_live_"}, Regex: tokRule(`rk_live_[0-9A-Za-z]{24,99}`)},
		{ID: "twilio-api-key", Peers: []string{"gitleaks:twilio-api-key", "trivy:twilio-api-key"}, Title: "Twilio API key SID", Category: "Twilio", Severity: high,
			Keywords: []string{"sk"}, Regex: tokRule(`SK[0-9a-f]{32}`)},
		{ID: "twilio-account-sid", Title: "Twilio account SID with credentials context", Category: "Twilio", Severity: med,
			Keywords: []string{"twilio"}, Assignment: true, Regex: ctxRule(`twilio`, `AC[0-9a-f]{32}`)},
		{ID: "sendgrid-api-key", Peers: []string{"gitleaks:sendgrid-api-token", "trivy:sendgrid-api-token"}, Title: "SendGrid API key", Category: "SendGrid", Severity: high,
			Keywords: []string{"sg."}, Regex: tokRule(`SG\.[0-9A-Za-z_-]{22}\.[0-9A-Za-z_-]{43}`)},
		{ID: "mailgun-api-key", Peers: []string{"gitleaks:mailgun-private-api-token"}, Title: "Mailgun API or signing key", Category: "Mailgun", Severity: high,
			Keywords: []string{"mailgun"}, Assignment: true, Regex: ctxRule(`mailgun`, `(?:pub)?key-[0-9a-f]{32}|[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}`)},
		{ID: "mailchimp-api-key", Peers: []string{"gitleaks:mailchimp-api-key"}, Title: "Mailchimp API key", Category: "Mailchimp", Severity: high,
			Keywords: []string{"-us"}, Lookbehind: 32, Regex: tokRule(`[0-9a-f]{32}-us[0-9]{1,2}`)},
		{ID: "sendinblue-api-key", Peers: []string{"gitleaks:sendinblue-api-token", "trivy:sendinblue-api-token"}, Title: "Brevo (Sendinblue) API key", Category: "Brevo", Severity: high,
			Keywords: []string{"xkeysib-"}, Regex: tokRule(`xkeysib-[a-f0-9]{64}-[0-9A-Za-z]{16}`)},
		{ID: "shopify-token", Peers: []string{"gitleaks:shopify-access-token", "gitleaks:shopify-shared-secret", "trivy:shopify-token"}, Title: "Shopify access token or shared secret", Category: "Shopify", Severity: high,
			Keywords: []string{"shpat_", "shpca_", "shppa_", "shpss_"}, Regex: tokRule(`shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}`)},
		{ID: "square-access-token", Peers: []string{"gitleaks:square-access-token"}, Title: "Square access token", Category: "Square", Severity: high,
			Keywords: []string{"eaaa", "sq0atp-", "sq0csp-"}, Regex: tokRule(`(?:EAAA[0-9A-Za-z_-]{60}|sq0(?:atp|csp)-[0-9A-Za-z_-]{22,43})`)},
		{ID: "databricks-token", Peers: []string{"gitleaks:databricks-api-token", "trivy:databricks-api-token"}, Title: "Databricks personal access token", Category: "Databricks", Severity: high,
			Keywords: []string{"dapi"}, Regex: tokRule(`dapi[a-f0-9]{32}(?:-\d)?`)},
		{ID: "okta-api-token", Title: "Okta API token", Category: "Okta", Severity: high,
			Keywords: []string{"okta"}, MinEntropy: 3.5, Assignment: true, Regex: ctxRule(`okta`, `00[0-9A-Za-z_-]{40}`)},
		{ID: "vault-service-token", Peers: []string{"gitleaks:vault-service-token"}, Title: "HashiCorp Vault token", Category: catHashiCorp, Severity: high,
			Keywords: []string{"hvs.", "hvb."}, Regex: tokRule(`hv[sb]\.[0-9A-Za-z_-]{24,}`)},
		{ID: "vault-token-legacy", Title: "HashiCorp Vault token (legacy s. format)", Category: catHashiCorp, Severity: high,
			Keywords: []string{"vault"}, MinEntropy: 3.5, Assignment: true, Regex: ctxRule(`vault`, `s\.[0-9A-Za-z]{24}`)},
		{ID: "terraform-cloud-token", Peers: []string{"gitleaks:hashicorp-tf-api-token"}, Title: "Terraform Cloud / HCP API token", Category: catHashiCorp, Severity: high,
			Keywords: []string{".atlasv1."}, Lookbehind: 14, Regex: tokRule(`[0-9A-Za-z]{14}\.atlasv1\.[0-9A-Za-z_=-]{60,70}`)},
		{ID: "grafana-token", Peers: []string{"gitleaks:grafana-cloud-api-token", "gitleaks:grafana-service-account-token"}, Title: "Grafana cloud or service account token", Category: "Grafana", Severity: high,
			Keywords: []string{"glc_", "glsa_"}, Regex: tokRule(`(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})`)},
		{ID: "new-relic-api-key", Peers: []string{"gitleaks:new-relic-user-api-key", "trivy:new-relic-user-api-key"}, Title: "New Relic user API key", Category: "NewRelic", Severity: high,
			Keywords: []string{"nrak-"}, Regex: tokRule(`NRAK-[0-9A-Z]{27}`)},
		{ID: "linear-api-key", Peers: []string{"gitleaks:linear-api-key"}, Title: "Linear API key", Category: "Linear", Severity: high,
			Keywords: []string{"lin_api_"}, Regex: tokRule(`lin_api_[0-9A-Za-z]{40}`)},
		{ID: "postman-api-key", Peers: []string{"gitleaks:postman-api-token", "trivy:postman-api-token"}, Title: "Postman API key", Category: "Postman", Severity: high,
			Keywords: []string{"pmak-"}, Regex: tokRule(`PMAK-[a-f0-9]{24}-[a-f0-9]{34}`)},
		{ID: "pulumi-access-token", Peers: []string{"gitleaks:pulumi-api-token", "trivy:pulumi-api-token"}, Title: "Pulumi access token", Category: "Pulumi", Severity: high,
			Keywords: []string{"pul-"}, Regex: tokRule(`pul-[a-f0-9]{40}`)},
		{ID: "doppler-token", Peers: []string{"gitleaks:doppler-api-token"}, Title: "Doppler token", Category: "Doppler", Severity: high,
			Keywords: []string{"dp.pt.", "dp.st."}, Regex: tokRule(`dp\.(?:pt|st)\.[0-9A-Za-z]{40,44}`)},
		{ID: "dynatrace-token", Peers: []string{"gitleaks:dynatrace-api-token"}, Title: "Dynatrace API token", Category: "Dynatrace", Severity: high,
			Keywords: []string{"dt0c01."}, Regex: tokRule(`dt0c01\.[0-9A-Z]{24}\.[0-9A-Z]{64}`)},
		{ID: "planetscale-token", Peers: []string{"gitleaks:planetscale-api-token", "gitleaks:planetscale-password", "trivy:planetscale-api-token", "trivy:planetscale-password"}, Title: "PlanetScale password or token", Category: "PlanetScale", Severity: high,
			Keywords: []string{"pscale_"}, Regex: tokRule(`pscale_(?:pw|tkn|oauth)_[0-9A-Za-z_.-]{32,64}`)},
		{ID: "openai-api-key", Peers: []string{"gitleaks:openai-api-key"}, Title: "OpenAI API key", Category: "OpenAI", Severity: high,
			Keywords: []string{"sk-"}, Regex: tokRule(`sk-(?:proj-|svcacct-|admin-)?[0-9A-Za-z_-]{20,}T3BlbkFJ[0-9A-Za-z_-]{20,}`)},
		{ID: "anthropic-api-key", Peers: []string{"gitleaks:anthropic-api-key"}, Title: "Anthropic API key", Category: "Anthropic", Severity: high,
			Keywords: []string{"sk-ant-"}, Regex: tokRule(`sk-ant-(?:api03|admin01)-[0-9A-Za-z_-]{90,}`)},
		{ID: "huggingface-token", Peers: []string{"gitleaks:huggingface-access-token", "trivy:hugging-face-access-token"}, Title: "Hugging Face access token", Category: "HuggingFace", Severity: high,
			Keywords: []string{"hf_"}, MinEntropy: 3.5, Regex: tokRule(`hf_[A-Za-z]{34}`)},
		{ID: "jwt", Peers: []string{"gitleaks:jwt", "gitleaks:jwt-base64"}, Title: "JSON Web Token", Category: "JWT", Severity: med,
			Description: "A signed JSON Web Token; it may grant access until it expires.",
			Keywords:    []string{"eyj"},
			Regex:       tokRule(`eyJ[0-9A-Za-z_-]{10,}={0,2}\.eyJ[0-9A-Za-z_-]{10,}={0,2}\.[0-9A-Za-z_-]{16,}={0,2}`)},

		// --- Infrastructure credentials (High) ---
		{ID: "ceph-keyring-key", Peers: []string{"gitleaks:generic-api-key"}, Title: "Ceph / RADOS keyring key", Category: "Ceph", Severity: high,
			Description: "A CephX secret key (a keyring's key = AQ...==): it authenticates a Ceph client or daemon to the whole cluster it is capable for.",
			Keywords:    []string{"key"}, Assignment: true,
			// CephX keys are base64 of 28 bytes: a 2-byte type (AQ), a
			// creation time, the 16-byte secret (ceph/src/auth/Crypto.cc).
			Regex: regexp.MustCompile(`(?i)key` + `\s*[=:]\s*` + openQ + `(AQ[A-Za-z0-9+/]{38}==)` + tail)},
		{ID: "kubeadm-bootstrap-token", Title: "Kubernetes (kubeadm) bootstrap token", Category: "Kubernetes", Severity: high,
			Description: "A bootstrap token (<6-char id>.<16-char secret>) lets whoever holds it join nodes to the cluster and read its cluster-info; kubeadm makes them for node joins.",
			Keywords:    []string{"token"}, Lookbehind: LineStart,
			Regex: regexp.MustCompile(`(?i)(?:--(?:discovery-)?token[= ]+|token["']?\s*[:=]\s*)["']?([a-z0-9]{6}\.[a-z0-9]{16})(?:[^0-9a-z.]|$)`)},
		{ID: "curl-auth-header", Peers: []string{"gitleaks:curl-auth-header"}, Title: "Credential in a curl Authorization header", Category: catGeneric, Severity: high,
			Description: "A script passes a bearer or API token to curl in an Authorization header: the token is in the file, and in every process listing while curl runs.",
			Keywords:    []string{"curl"}, Placeholders: true, MinLength: 16, MaxLength: 2048, MinEntropy: 3.0,
			Regex: regexp.MustCompile(`(?i)curl\b[^\n]{0,400}?(?:-H|--header)\s*["']?Authorization:\s*(?:Bearer|Token|Basic)\s+([A-Za-z0-9._~+/=-]+)`)},
		{ID: "curl-auth-user", Peers: []string{"gitleaks:curl-auth-user"}, Title: "Password in a curl --user argument", Category: catGeneric, Severity: high,
			Description: "A script passes user:password to curl (-u / --user): the password is in the file and in process listings.",
			Keywords:    []string{"curl"}, Placeholders: true, MinLength: 6, MaxLength: 256, MinEntropy: 2.5,
			SecretGroup: "pass",
			Regex:       regexp.MustCompile(`(?i)curl\b[^\n]{0,400}?\s(?:-u|--user)[ =]*["']?[^\s"':$]+:(?P<pass>[^\s"'$]+)`)},

		// --- Generic (Medium) ---
		{ID: "url-credentials", Title: "Password in a URL", Category: catGeneric, Severity: med,
			Keywords: []string{"://"}, Placeholders: true, MinLength: 6, MinEntropy: 2.5,
			MaxLength: 128,
			Regex:     regexp.MustCompile(`://[^\s:@/"'<>]+:([^\s:@/"'<>]+)@[0-9A-Za-z.-]+`)},
		{ID: "generic-password", Peers: []string{"gitleaks:generic-api-key"}, Title: "Hard-coded password", Category: catGeneric, Severity: med,
			Keywords:     []string{"passwd", "password", "pwd", "pass="},
			Placeholders: true, MinLength: 8, MaxLength: 128, MinEntropy: 3.0, Assignment: true, Regex: genericRule(`passwd|password|pwd|pass`)},
		{ID: "generic-secret", Peers: []string{"gitleaks:generic-api-key"}, Title: "Hard-coded secret", Category: catGeneric, Severity: med,
			Keywords: []string{"secret"}, Placeholders: true, MinLength: 10, MaxLength: 128, MinEntropy: 3.3, Assignment: true, Regex: genericRule(`secret`)},
		{ID: "generic-api-token", Peers: []string{"gitleaks:generic-api-key"}, Title: "Hard-coded API key or token", Category: catGeneric, Severity: med,
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
		// kubeadm's documentation token, in every tutorial.
		{ID: "kubeadm-docs-token", Description: "kubeadm documentation example token",
			Regex: regexp.MustCompile(`^(?:abcdef\.0123456789abcdef|783bde\.3f89s0fje9f38fhf|07401b\.f395accd246ae52d)$`)},
		{ID: "jwt-io-example", Description: "jwt.io and RFC 7519 example tokens",
			Regex: regexp.MustCompile(`^eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9\.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ\.`)},
	}
}
