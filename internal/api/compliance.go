package api

// PathComplianceReport serves a compliance report: ?standard=nist-800-190
// (the default) and ?format=json|html|pdf. The JSON body is the report of
// docs/compliance.md (internal/compliance.Report, schemaVersion 1).
const PathComplianceReport = Prefix + "/compliance/report"

// Compliance report query parameters.
const (
	ComplianceParamStandard = "standard"
	ComplianceParamFormat   = "format"
)
