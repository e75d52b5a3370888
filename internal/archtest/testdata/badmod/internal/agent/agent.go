// Package agent is a fixture component that links the store through the
// model: archtest must report the transitive dependency.
package agent

import "mamori/internal/model"

// R is a stand-in.
var R model.Result
