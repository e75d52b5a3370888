// Package model is a fixture that breaks the layering on purpose: the leaf
// model importing the store. archtest must report it.
package model

import "mamori/internal/store"

// Result is a stand-in result type.
type Result struct{ Row store.Row }
