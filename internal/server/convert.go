package server

import (
	"mamori/internal/api"
	"mamori/internal/service/events"
	"mamori/internal/service/tokens"
	"mamori/internal/store"
)

// Conversions from store rows to the API's wire types (package api): the
// store's types carry no JSON tags, so that the wire format is stated once,
// in api, and checked against docs/openapi.yaml.

func apiSeverityCounts(c store.SeverityCounts) api.SeverityCounts {
	return api.SeverityCounts{Critical: c.Critical, High: c.High, Medium: c.Medium, Low: c.Low,
		Negligible: c.Negligible, Unknown: c.Unknown, Fixable: c.Fixable}
}

func apiImageSummary(s store.ImageSummary) api.ImageSummary {
	return api.ImageSummary{ID: s.ID, Name: s.Name, Type: s.Type, Digest: s.Digest, ConfigDigest: s.ConfigDigest,
		RepoTags: s.RepoTags, Platform: s.Platform, OS: s.OS, Size: s.Size, FirstSeen: s.FirstSeen,
		LastScannedAt: s.LastScannedAt, LatestScanID: s.LatestScanID, PackageCount: s.PackageCount,
		Vulnerabilities: apiSeverityCounts(s.Vulnerabilities),
		FindingCounts:   api.FindingCounts{Secret: s.FindingCounts.Secret, Malware: s.FindingCounts.Malware, Misconfig: s.FindingCounts.Misconfig}}
}

func apiImagePage(p store.ImagePage) api.ImagePage {
	out := api.ImagePage{Images: make([]api.ImageSummary, 0, len(p.Images)), Total: p.Total}
	for _, s := range p.Images {
		out.Images = append(out.Images, apiImageSummary(s))
	}
	return out
}

func apiImageDetail(d *store.ImageDetail) api.ImageDetail {
	return api.ImageDetail{ImageSummary: apiImageSummary(d.ImageSummary), Layers: d.Layers, OSInfo: d.OSInfo,
		Tool: d.Tool, ScanID: d.ScanID, Scanners: d.Scanners, Warnings: d.Warnings, DB: d.DB,
		Packages: d.Packages, Findings: d.Findings}
}

func apiScanPage(p store.ScanPage) api.ScanPage {
	out := api.ScanPage{Scans: make([]api.ScanRecord, 0, len(p.Scans)), Total: p.Total}
	for _, s := range p.Scans {
		out.Scans = append(out.Scans, api.ScanRecord{ID: s.ID, ImageID: s.ImageID, ScanID: s.ScanID,
			TargetName: s.TargetName, CreatedAt: s.CreatedAt, IngestedAt: s.IngestedAt, Tool: s.Tool,
			Scanners: s.Scanners, Warnings: s.Warnings, DB: s.DB, Packages: s.Packages,
			Vulnerabilities: s.Vulnerabilities, Findings: s.Findings, Latest: s.Latest})
	}
	return out
}

func apiIngestOutcome(o store.IngestOutcome) api.IngestOutcome {
	return api.IngestOutcome{Status: string(o.Status), ImageID: o.ImageID, ScanID: o.ScanID, Packages: o.Packages,
		Vulnerabilities: o.Vulnerabilities, Findings: o.Findings, Duplicate: o.Status == store.IngestDuplicate}
}

func apiVulnSummary(v store.VulnerabilitySummary) api.VulnerabilitySummary {
	pk := v.Packages
	if pk == nil {
		pk = []string{}
	}
	return api.VulnerabilitySummary{ID: v.ID, Aliases: v.Aliases, Severity: v.Severity, CVSS: v.CVSS, Summary: v.Summary,
		Packages: pk, PackageCount: v.PackageCount, AffectedImages: v.AffectedImages, Fixable: v.Fixable,
		Published: v.Published, Modified: v.Modified, KEV: v.KEV, EPSS: v.EPSS, Priority: v.Priority}
}

func apiVulnPage(p store.VulnerabilityPage) api.VulnerabilityPage {
	out := api.VulnerabilityPage{Vulnerabilities: make([]api.VulnerabilitySummary, 0, len(p.Vulnerabilities)), Total: p.Total}
	for _, v := range p.Vulnerabilities {
		out.Vulnerabilities = append(out.Vulnerabilities, apiVulnSummary(v))
	}
	return out
}

func apiVulnDetail(d *store.VulnerabilityDetail) api.VulnerabilityDetail {
	out := api.VulnerabilityDetail{VulnerabilitySummary: apiVulnSummary(d.VulnerabilitySummary), Details: d.Details,
		References: d.References, CVSSVectors: d.CVSSVectors, DataSources: d.DataSources,
		Affected: make([]api.AffectedPackage, 0, len(d.Affected)), AffectedTotal: d.AffectedTotal,
		Workloads: make([]api.AffectedWorkload, 0, len(d.Workloads))}
	for _, a := range d.Affected {
		out.Affected = append(out.Affected, api.AffectedPackage{ImageID: a.ImageID, ImageName: a.ImageName,
			ImageDigest: a.ImageDigest, Package: a.Package, FixedVersion: a.FixedVersion, Severity: a.Severity,
			DataSource: a.DataSource, LastScannedAt: a.LastScannedAt, SeveritySource: a.SeveritySource,
			Priority: a.Priority, InUse: a.InUse})
	}
	out.HostContainers = make([]api.HostContainer, 0, len(d.HostContainers))
	for _, c := range d.HostContainers {
		out.HostContainers = append(out.HostContainers, api.HostContainer{Cluster: c.Cluster, Node: c.Node, ID: c.ID, Name: c.Name,
			Image: c.Image, ImageDigest: c.ImageDigest, Runtime: c.Runtime, Namespace: c.Namespace, Pod: c.Pod, ImageID: c.ImageID,
			FirstSeen: c.FirstSeen, LastSeen: c.LastSeen})
	}
	for _, w := range d.Workloads {
		out.Workloads = append(out.Workloads, api.AffectedWorkload{Cluster: w.Cluster, Namespace: w.Namespace,
			Kind: w.Kind, Name: w.Name, Container: w.Container, ImageID: w.ImageID, LastDetected: w.LastDetected})
	}
	return out
}

func apiToken(t store.Token) api.Token {
	return api.Token{ID: t.ID, Name: t.Name, Role: t.Role, Cluster: t.Cluster, Prefix: t.Prefix, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
}

func apiTokenCreated(c tokens.Created) api.TokenCreated {
	t := c.Token
	return api.TokenCreated{ID: t.ID, Name: t.Name, Role: t.Role, Cluster: t.Cluster, Prefix: t.Prefix,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Token: c.Secret}
}

func apiCluster(c store.Cluster) api.Cluster {
	return api.Cluster{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt, RegisteredAt: c.RegisteredAt, LastContact: c.LastContact,
		Version: c.Version, KubernetesVersion: c.KubernetesVersion, Nodes: c.Nodes, Policy: c.Policy}
}

func apiAgent(a store.Agent) api.Agent {
	return api.Agent{ID: a.ID, Cluster: a.Cluster, Node: a.Node, Hostname: a.Hostname, Version: a.Version, OS: a.OS,
		Kernel: a.Kernel, Arch: a.Arch, FirstSeen: a.FirstSeen, LastContact: a.LastContact, Sensor: api.SensorOf(a.Sensor.Mode, a.Sensor.Hooks, a.Sensor.Missing)}
}

func apiEventPage(p store.EventPage) api.EventPage {
	out := api.EventPage{Events: make([]api.EventRecord, 0, len(p.Events)), NextCursor: events.EncodeCursor(p.Next)}
	for _, r := range p.Events {
		out.Events = append(out.Events, api.EventRecord{Event: r.Event, ReceivedAt: r.ReceivedAt, ReportedBy: r.ReportedBy})
	}
	return out
}

func apiRegistrySync(s store.RegistrySync) api.RegistrySync {
	return api.RegistrySync{At: s.At, Status: s.Status, Error: s.Error}
}
