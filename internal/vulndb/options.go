package vulndb

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of the options.
const (
	// DefaultBaseURL is osv.dev's public bucket of per-ecosystem dumps
	// (<base>/<Ecosystem>/all.zip).
	DefaultBaseURL = "https://osv-vulnerabilities.storage.googleapis.com"
	// DefaultMaxDownloadBytes bounds one downloaded zip: the largest
	// osv.dev ecosystem dump is a few hundred MiB.
	DefaultMaxDownloadBytes = 4 << 30
	// DefaultKEVURL is CISA's Known Exploited Vulnerabilities catalogue, JSON feed.
	DefaultKEVURL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
	// DefaultEPSSURL is FIRST's EPSS scores of the day, gzip-compressed CSV
	// (https://www.first.org/epss/data_stats).
	DefaultEPSSURL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
	// defaultHTTPTimeout bounds one whole download on the default client.
	defaultHTTPTimeout = 30 * time.Minute
)

// Option configures Import and Update.
type Option func(*options) error

type options struct {
	baseURL     string
	ecosystems  []string
	client      *http.Client
	maxEntries  int
	maxTotal    int64
	maxDownload int64
	log         *slog.Logger
	now         func() time.Time
	progress    func(n int64)
	kevURL      string
	epssURL     string
	kevFile     string
	epssFile    string
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		baseURL:     DefaultBaseURL,
		maxEntries:  DefaultMaxEntries,
		maxTotal:    DefaultMaxTotalBytes,
		maxDownload: DefaultMaxDownloadBytes,
		log:         slog.New(slog.DiscardHandler),
		now:         time.Now,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	return o, nil
}

// WithBaseURL sets the mirror to download from: <base>/<Ecosystem>/all.zip.
func WithBaseURL(base string) Option {
	return func(o *options) error {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("vulndb: base URL %q: want an http or https URL", base)
		}
		o.baseURL = strings.TrimRight(base, "/")
		return nil
	}
}

// WithEcosystems names the OSV ecosystems Update downloads ("Debian",
// "Alpine", "npm", "Go" …); release scopes are dropped ("Debian:12" →
// "Debian") because osv.dev publishes one dump per base ecosystem.
func WithEcosystems(ecosystems ...string) Option {
	return func(o *options) error {
		seen := map[string]bool{}
		for _, e := range ecosystems {
			base, _ := SplitEcosystem(e)
			if base == "" || strings.ContainsAny(base, "/\\") || base == "." || base == ".." {
				return fmt.Errorf("vulndb: ecosystem %q is not an OSV ecosystem name", e)
			}
			if !seen[base] {
				seen[base] = true
				o.ecosystems = append(o.ecosystems, base)
			}
		}
		return nil
	}
}

// WithHTTPClient sets the client used for downloads (proxies, TLS, timeouts).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("vulndb: nil HTTP client")
		}
		o.client = c
		return nil
	}
}

// WithLimits overrides the import caps: files read, decompressed bytes read,
// and bytes of one download. Zero keeps a default.
func WithLimits(maxEntries int, maxTotalBytes, maxDownloadBytes int64) Option {
	return func(o *options) error {
		if maxEntries < 0 || maxTotalBytes < 0 || maxDownloadBytes < 0 {
			return errors.New("vulndb: negative limit")
		}
		if maxEntries > 0 {
			o.maxEntries = maxEntries
		}
		if maxTotalBytes > 0 {
			o.maxTotal = maxTotalBytes
		}
		if maxDownloadBytes > 0 {
			o.maxDownload = maxDownloadBytes
		}
		return nil
	}
}

// WithLogger sets the logger for progress and skipped records.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("vulndb: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithProgress has Update report the bytes it downloads to fn (a progress
// bar); fn must be cheap and safe for concurrent use.
func WithProgress(fn func(n int64)) Option {
	return func(o *options) error {
		o.progress = fn
		return nil
	}
}

// WithKEVURL has Update fetch CISA's KEV catalogue (JSON feed) from u;
// empty fetches none.
func WithKEVURL(u string) Option {
	return func(o *options) error {
		if err := checkURL("KEV", u); err != nil {
			return err
		}
		o.kevURL = u
		return nil
	}
}

// WithEPSSURL has Update fetch FIRST's EPSS CSV (gzip or plain) from u;
// empty fetches none.
func WithEPSSURL(u string) Option {
	return func(o *options) error {
		if err := checkURL("EPSS", u); err != nil {
			return err
		}
		o.epssURL = u
		return nil
	}
}

func checkURL(what, u string) error {
	if u == "" {
		return nil
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("vulndb: %s URL %q: want an http or https URL", what, u)
	}
	return nil
}

// WithKEVFile has Import read the KEV catalogue from a local copy of the
// JSON feed (air-gapped sites).
func WithKEVFile(p string) Option {
	return func(o *options) error { o.kevFile = p; return nil }
}

// WithEPSSFile has Import read EPSS scores from a local copy of FIRST's
// CSV (gzip or plain).
func WithEPSSFile(p string) Option {
	return func(o *options) error { o.epssFile = p; return nil }
}
