// Package web holds the console's assets: html/template pages under
// templates/ and static files (CSS, one small script, the logo) under static/.
// They are embedded in the binary so that mamori server is the whole product:
// no Node build, no CDN, nothing to install beside it.
package web

import "embed"

// FS holds templates/*.html and static/*.
//
//go:embed templates/*.html static/*
var FS embed.FS
