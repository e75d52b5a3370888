package match

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"

	"mamori/internal/model"
	"mamori/internal/vulndb"
)

// realOSV is the shared snapshot of real OSV data; without it the benchmark
// uses the testdata subset.
const realOSV = "/work/shared/data/osv"

// benchInventories is how many inventories BenchmarkRematch10k matches.
var benchInventories = 10_000

// Package names of a typical Debian 12 image with Node, Go and Python
// layers; many have advisories in the real data, many do not.
var (
	benchDeb = []string{"glibc", "openssl", "curl", "zlib", "libxml2", "tar", "gnutls28", "ncurses", "perl", "systemd",
		"sqlite3", "bash", "coreutils", "dpkg", "apt", "gzip", "xz-utils", "bzip2", "util-linux", "shadow", "sed", "grep",
		"findutils", "libgcrypt20", "libtasn1-6", "p11-kit", "krb5", "openldap", "cyrus-sasl2", "libssh2", "nghttp2",
		"libidn2", "libunistring", "libpsl", "e2fsprogs", "pam", "libcap2", "libseccomp", "audit", "attr", "acl",
		"libselinux", "pcre2", "pcre3", "lz4", "zstd", "libzstd", "gcc-12", "libffi", "expat", "python3.11", "git",
		"openssh", "ca-certificates", "tzdata", "debianutils", "base-files", "hostname", "mawk", "libgpg-error",
		"nettle", "gmp", "libsemanage", "libsepol", "db5.3", "keyutils", "libbsd", "libmd", "readline", "icu",
		"libxslt", "libyaml", "jansson", "libevent", "brotli", "libwebp", "tiff", "libpng1.6", "libjpeg-turbo",
		"freetype", "fontconfig", "harfbuzz", "cairo", "pixman", "glib2.0", "dbus", "libx11", "libxext", "libxrender",
		"imagemagick", "ghostscript", "poppler", "libtool", "make-dfsg", "binutils", "elfutils", "libzip", "minizip", "wget"}
	benchNPM = []string{"lodash", "qs", "path-to-regexp", "express", "ms", "send", "body-parser", "minimist", "serve-static",
		"debug", "cookie", "react", "react-dom", "axios", "chalk", "commander", "semver", "uuid", "glob", "minimatch",
		"yargs", "tslib", "rxjs", "moment", "async", "bluebird", "underscore", "request", "follow-redirects", "ws",
		"node-fetch", "jsonwebtoken", "tar", "mkdirp", "rimraf", "inherits", "safe-buffer", "string_decoder",
		"readable-stream", "once", "wrappy", "lru-cache", "yallist", "ansi-regex", "strip-ansi", "color-convert",
		"supports-color", "has-flag", "escape-string-regexp", "js-yaml", "argparse", "esprima", "acorn", "micromatch",
		"braces", "fill-range", "to-regex-range", "is-number", "picomatch", "lodash-es"}
	benchGo = []string{"golang.org/x/net", "golang.org/x/crypto", "golang.org/x/text", "golang.org/x/sys", "golang.org/x/oauth2",
		"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/gin-gonic/gin", "github.com/gorilla/websocket",
		"github.com/golang-jwt/jwt/v4", "github.com/docker/docker", "github.com/opencontainers/runc", "github.com/containerd/containerd",
		"k8s.io/kubernetes", "k8s.io/apimachinery", "k8s.io/client-go", "github.com/prometheus/client_golang",
		"github.com/sirupsen/logrus", "github.com/spf13/cobra", "gopkg.in/yaml.v3", "github.com/hashicorp/vault",
		"github.com/hashicorp/consul", "go.etcd.io/etcd", "github.com/go-git/go-git/v5", "github.com/labstack/echo/v4",
		"github.com/valyala/fasthttp", "github.com/gofiber/fiber/v2", "github.com/nats-io/nats-server/v2",
		"github.com/miekg/dns", "github.com/cloudflare/circl", "github.com/quic-go/quic-go", "golang.org/x/image",
		"github.com/mholt/archiver/v3", "github.com/ulikunitz/xz", "github.com/klauspost/compress",
		"github.com/emicklei/go-restful", "github.com/dgrijalva/jwt-go", "github.com/tidwall/gjson",
		"github.com/buger/jsonparser", "github.com/pion/dtls/v2"}
	benchPyPI = []string{"django", "requests", "urllib3", "flask", "jinja2", "werkzeug", "pyyaml", "cryptography", "pillow",
		"numpy", "setuptools", "pip", "certifi", "idna", "charset-normalizer", "py", "lxml", "paramiko", "sqlalchemy",
		"aiohttp", "tornado", "twisted", "gunicorn", "celery", "redis", "pymongo", "psycopg2", "boto3", "botocore",
		"ansible", "salt", "tensorflow", "torch", "scipy", "pandas", "markdown", "bleach", "mistune", "pygments", "waitress"}
	benchVersions = map[string][]string{
		"deb":  {"1.0-1", "2.36-9+deb12u3", "3.0.11-1~deb12u2", "7.88.1-10+deb12u5", "1:1.2.13.dfsg-1", "1.34+dfsg-1.2+deb12u1", "5.2.15-2+b2", "2.9.14+dfsg-1.3~deb12u1"},
		"npm":  {"4.17.20", "4.17.21", "6.5.2", "0.1.7", "4.18.2", "1.2.5", "2.6.9", "1.0.0", "3.0.0", "0.2.0"},
		"go":   {"v0.17.0", "v0.23.0", "v1.50.0", "v0.10.0", "v1.9.0", "v2.0.0", "v0.1.0", "v1.2.3"},
		"pypi": {"1.0", "2.2.28", "3.2.0", "4.2.14", "2.31.0", "1.26.5", "0.9.0", "5.0.7"},
	}
)

// genInventories makes n Debian 12 inventories of about 300 packages (120
// deb, 80 npm, 60 Go incl. stdlib, 40 PyPI) with versions drawn from
// realistic sets, deterministically.
func genInventories(n int) []*model.Inventory {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	out := make([]*model.Inventory, n)
	for i := range out {
		inv := &model.Inventory{OS: &model.OS{ID: "debian", VersionID: "12.5"}}
		add := func(typ, name, ver string) {
			inv.Packages = append(inv.Packages, model.Package{Name: name, Version: ver, Type: typ,
				PURL: "pkg:" + typ + "/" + name + "@" + ver, Locations: []model.PackageLocation{{Path: "x"}}})
		}
		for j := 0; j < 120; j++ {
			src := pick(benchDeb)
			add(model.TypeDeb, fmt.Sprintf("lib%s-%d", src, j%3), pick(benchVersions["deb"]))
			inv.Packages[len(inv.Packages)-1].SourceName = src
		}
		for j := 0; j < 80; j++ {
			add(model.TypeNPM, pick(benchNPM), pick(benchVersions["npm"]))
		}
		add(model.TypeGolang, "stdlib", pick([]string{"go1.21.3", "go1.22.5", "go1.25.12", "go1.26.5"}))
		for j := 0; j < 59; j++ {
			add(model.TypeGolang, pick(benchGo), pick(benchVersions["go"]))
		}
		for j := 0; j < 40; j++ {
			add(model.TypePyPI, pick(benchPyPI), pick(benchVersions["pypi"]))
		}
		out[i] = inv
	}
	return out
}

func benchDB(b *testing.B) *vulndb.DB { return benchDBFrom(b, false) }

// realData is the whole shared snapshot: the OSV dumps, the GHSA records
// that alias GO-/PYSEC- records, the KEV catalogue and EPSS rows.
const (
	realData = "/work/shared/data"
	realEPSS = realData + "/epss-sample/epss_scores-subset.csv"
)

// benchDBFrom builds the benchmark database: the real OSV dumps (else the
// testdata subset), with intel also the GHSA records, KEV and EPSS (else
// testdata/prio with its feeds).
func benchDBFrom(b *testing.B, intel bool) *vulndb.DB {
	b.Helper()
	src := realOSV
	if _, err := os.Stat(src); err != nil {
		src = "testdata/osv"
	}
	var opts []vulndb.Option
	if intel {
		src = realData
		opts = append(opts, vulndb.WithEPSSFile(realEPSS))
		if _, err := os.Stat(realEPSS); err != nil {
			src, opts = "testdata/prio", nil
		}
	}
	dir := b.TempDir()
	if _, err := vulndb.Import(context.Background(), dir, src, opts...); err != nil {
		b.Fatal(err)
	}
	db, err := vulndb.Open(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	b.Logf("database from %s: %d records", src, db.Metadata().Records)
	return db
}

// BenchmarkRematch10k re-matches 10,000 stored inventories of 300 packages
// against one database with one Matcher, on all cores: the continuous
// re-scan after a database update. Target: under 60 s on 2 cores.
func BenchmarkRematch10k(b *testing.B) {
	db := benchDB(b)
	invs := genInventories(benchInventories)
	ctx := context.Background()
	var total int
	cpu0 := cpuSeconds()
	for b.Loop() {
		m := NewMatcher(db)
		total = rematch(ctx, b, m, invs)
	}
	// CPU seconds are reported beside wall time because the machine may be
	// shared: on 2 idle cores wall time is about cpu-s/2.
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(total), "vulns")
	b.ReportMetric(float64(len(invs)*300*b.N)/b.Elapsed().Seconds(), "pkgs/s")
}

// BenchmarkRematch10kIntel is BenchmarkRematch10k with the extra data of
// issue 15 in the database: the GHSA records aliasing GO-/PYSEC- records
// (severity through the alias index), KEV and EPSS. Target: under 60 s.
func BenchmarkRematch10kIntel(b *testing.B) {
	db := benchDBFrom(b, true)
	invs := genInventories(benchInventories)
	ctx := context.Background()
	var total, kev int
	cpu0 := cpuSeconds()
	for b.Loop() {
		m := NewMatcher(db)
		total = rematch(ctx, b, m, invs)
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(total), "vulns")
	b.ReportMetric(float64(len(invs)*300*b.N)/b.Elapsed().Seconds(), "pkgs/s")
	vulns, _, err := NewMatcher(db).Match(ctx, invs[0])
	if err != nil {
		b.Fatal(err)
	}
	unknown := 0
	for _, v := range vulns {
		if v.KEV != nil {
			kev++
		}
		if v.Severity == model.SeverityUnknown {
			unknown++
		}
	}
	b.Logf("first inventory: %d findings, %d Unknown, %d known exploited", len(vulns), unknown, kev)
}

// BenchmarkMatchOne matches one inventory with a fresh Matcher (a
// one-off CLI scan: nothing cached).
func BenchmarkMatchOne(b *testing.B) {
	db := benchDB(b)
	inv := genInventories(1)[0]
	ctx := context.Background()
	cpu0 := cpuSeconds()
	for b.Loop() {
		if _, _, err := Match(ctx, db, inv); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time beside wall time: the machine may be shared.
	b.ReportMetric((cpuSeconds()-cpu0)*1e3/float64(b.N), "cpu-ms/op")
}

func rematch(ctx context.Context, b *testing.B, m *Matcher, invs []*model.Inventory) int {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		next  = make(chan *model.Inventory)
	)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for inv := range next {
				vulns, _, err := m.Match(ctx, inv)
				if err != nil {
					b.Error(err)
					return
				}
				n += len(vulns)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	for _, inv := range invs {
		next <- inv
	}
	close(next)
	wg.Wait()
	return total
}
