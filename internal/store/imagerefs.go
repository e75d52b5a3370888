package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ImageRefStore finds stored images by the references pods write.
type ImageRefStore interface {
	// FindImage returns the image with manifest digest digest when it is
	// not empty, else the most recently scanned image named one of names
	// or tagged with one of them, with its latest scan's ID (the model's
	// ScanID). ErrNotFound when there is none.
	FindImage(ctx context.Context, digest string, names []string) (ImageSummary, string, error)
}

// maxRefNames bounds the names one lookup tries (a reference and its
// normalized forms).
const maxRefNames = 8

// FindImage implements ImageRefStore.
func (s *sqlStore) FindImage(ctx context.Context, digest string, names []string) (ImageSummary, string, error) {
	if len(names) > maxRefNames {
		names = names[:maxRefNames]
	}
	var where string
	var args []any
	if digest != "" {
		where, args = `i.image_key = ?`, []any{"digest:" + digest}
	} else {
		if len(names) == 0 {
			return ImageSummary{}, "", fmt.Errorf("store: find image: %w: no name or digest", ErrInvalid)
		}
		conds := []string{`i.name IN (` + placeholders(len(names)) + `)`}
		for _, n := range names {
			args = append(args, n)
		}
		for _, n := range names {
			b, err := jsonString(n)
			if err != nil {
				return ImageSummary{}, "", err
			}
			conds = append(conds, `i.repo_tags LIKE ? ESCAPE '\'`)
			args = append(args, "%"+likeEscape(b)+"%")
		}
		where = `(` + strings.Join(conds, " OR ") + `) AND i.type = 'image'`
	}
	var scanID sql.NullString
	im, err := scanImage(s.db.QueryRowContext(ctx, s.q(`SELECT `+imageCols+`, (SELECT sc.scan_id FROM scans sc WHERE sc.id = i.latest_scan_id)
		FROM images i WHERE `+where+` ORDER BY i.last_scanned_at DESC, i.id DESC LIMIT 1`), args...), &scanID)
	if errors.Is(err, sql.ErrNoRows) {
		return ImageSummary{}, "", fmt.Errorf("store: image %s: %w", firstNonEmpty(digest, strings.Join(names, ", ")), ErrNotFound)
	}
	if err != nil {
		return ImageSummary{}, "", fmt.Errorf("store: find image: %w", err)
	}
	return im, scanID.String, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// jsonString is s as a JSON string literal, as repo_tags stores it.
func jsonString(s string) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("store: encode %q: %w", s, err)
	}
	return string(b), nil
}
