package report

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"mamori/internal/model"
)

const noAssertion = "NOASSERTION"

// spdxIDUnsafe matches what SPDX identifiers may not hold ([a-zA-Z0-9.-]+).
var spdxIDUnsafe = regexp.MustCompile(`[^a-zA-Z0-9.-]+`)

// licenseIDRE matches a single SPDX license identifier; anything else
// (free text from a package's metadata) is not asserted.
var licenseIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*$`)

func writeSPDX(w io.Writer, results []*model.Result) error {
	doc := SPDX(results)
	if err := spdxjson.Write(doc, w, spdxjson.Indent("  ")); err != nil {
		return fmt.Errorf("report: spdx: %w", err)
	}
	return nil
}

// SPDX builds an SPDX 2.3 document: one package per target that the
// document DESCRIBES, each CONTAINS its packages.
func SPDX(results []*model.Result) *spdx.Document {
	doc := &spdx.Document{
		SPDXVersion:    spdx.Version,
		DataLicense:    spdx.DataLicense,
		SPDXIdentifier: "DOCUMENT",
	}
	var names []string
	for ti, r := range results {
		names = append(names, r.Target.Name)
		if doc.CreationInfo == nil {
			doc.CreationInfo = &spdx.CreationInfo{
				Creators: []common.Creator{{CreatorType: "Tool", Creator: "mamori-" + r.Tool.Version}, {CreatorType: "Organization", Creator: "mamori"}},
				Created:  r.CreatedAt.Format("2006-01-02T15:04:05Z"),
			}
			doc.DocumentNamespace = "https://mamori.dev/spdx/" + spdxIDUnsafe.ReplaceAllString(r.Target.Name, "-") + "-" + r.ScanID
		}
		rootID := common.ElementID(fmt.Sprintf("Target-%d-%s", ti, idPart(r.Target.Name)))
		root := &spdx.Package{
			PackageName:             r.Target.Name,
			PackageSPDXIdentifier:   rootID,
			PackageVersion:          r.Target.Digest,
			PackageDownloadLocation: noAssertion,
			PrimaryPackagePurpose:   "CONTAINER",
			PackageLicenseConcluded: noAssertion,
			PackageLicenseDeclared:  noAssertion,
			PackageCopyrightText:    noAssertion,
		}
		if r.Target.Type != model.TargetImage {
			root.PrimaryPackagePurpose = "SOURCE"
		}
		doc.Packages = append(doc.Packages, root)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(rootID)), Relationship: "DESCRIBES",
		})
		if os := r.Inventory.OS; os != nil {
			osID := common.ElementID(fmt.Sprintf("OS-%d-%s", ti, idPart(os.ID)))
			doc.Packages = append(doc.Packages, &spdx.Package{
				PackageName: os.ID, PackageSPDXIdentifier: osID, PackageVersion: os.VersionID,
				PackageDownloadLocation: noAssertion, PrimaryPackagePurpose: "OPERATING-SYSTEM",
				PackageLicenseConcluded: noAssertion, PackageLicenseDeclared: noAssertion, PackageCopyrightText: noAssertion,
			})
			doc.Relationships = append(doc.Relationships, &spdx.Relationship{
				RefA: common.MakeDocElementID("", string(rootID)), RefB: common.MakeDocElementID("", string(osID)), Relationship: "CONTAINS",
			})
		}
		for i := range r.Inventory.Packages {
			p := &r.Inventory.Packages[i]
			id := common.ElementID(fmt.Sprintf("Package-%d-%d-%s", ti, i, idPart(p.Name)))
			sp := &spdx.Package{
				PackageName:             p.Name,
				PackageSPDXIdentifier:   id,
				PackageVersion:          p.Version,
				PackageDownloadLocation: noAssertion,
				PrimaryPackagePurpose:   "LIBRARY",
				PackageLicenseConcluded: noAssertion,
				PackageLicenseDeclared:  spdxLicense(p.Licenses),
				PackageCopyrightText:    noAssertion,
				PackageSourceInfo:       "found by mamori " + p.Cataloger + " in " + strings.Join(locPaths(p.Locations), ", "),
			}
			if p.PURL != "" {
				sp.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.PURL}}
			}
			doc.Packages = append(doc.Packages, sp)
			doc.Relationships = append(doc.Relationships, &spdx.Relationship{
				RefA: common.MakeDocElementID("", string(rootID)), RefB: common.MakeDocElementID("", string(id)), Relationship: "CONTAINS",
			})
		}
	}
	doc.DocumentName = strings.Join(names, ", ")
	if warns := warnings(results); len(warns) > 0 {
		doc.DocumentComment = "mamori scan warnings:\n" + strings.Join(warns, "\n")
	}
	if doc.CreationInfo == nil {
		doc.CreationInfo = &spdx.CreationInfo{Creators: []common.Creator{{CreatorType: "Tool", Creator: "mamori"}}, Created: "1970-01-01T00:00:00Z"}
		doc.DocumentNamespace = "https://mamori.dev/spdx/empty"
	}
	return doc
}

func idPart(s string) string {
	s = spdxIDUnsafe.ReplaceAllString(s, "-")
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func spdxLicense(ls []string) string {
	if len(ls) == 1 && licenseIDRE.MatchString(ls[0]) {
		return ls[0]
	}
	return noAssertion
}

func locPaths(ls []model.PackageLocation) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, "/"+l.Path)
	}
	return out
}
