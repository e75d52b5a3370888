// Package store is a fixture: a stand-in for mamori's store.
package store

// Row is a stand-in row type.
type Row struct{ ID string }
