package report

import (
	"encoding/json"
	"fmt"
	"io"

	"mamori/internal/model"
)

// writeJSON writes one result as an object, several as an array, so that
// the common one-target case reads naturally.
func writeJSON(w io.Writer, results []*model.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	var v any = results
	if len(results) == 1 {
		v = results[0]
	}
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("report: json: %w", err)
	}
	return nil
}
