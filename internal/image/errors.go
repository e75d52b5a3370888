package image

import "errors"

// Sentinel errors; every error returned by this package wraps one of them or
// an error from the source it read (registry, daemon, file system).
var (
	// ErrInvalidOption reports an option with a bad value.
	ErrInvalidOption = errors.New("image: invalid option")
	// ErrInvalidReference reports a reference that no source can parse.
	ErrInvalidReference = errors.New("image: invalid reference")
	// ErrNotFound reports an image (or a file naming it) that is not there.
	ErrNotFound = errors.New("image: not found")
	// ErrMalformed reports an archive, layout, manifest or config that
	// breaks its format: corrupt or truncated tar, bad JSON, an unsafe path,
	// a blob that does not match its digest.
	ErrMalformed = errors.New("image: malformed")
	// ErrTooLarge reports a document or archive over one of the caps.
	ErrTooLarge = errors.New("image: too large")
	// ErrNoPlatform reports an index with no image for the wanted platform.
	ErrNoPlatform = errors.New("image: no matching platform")
	// ErrAmbiguous reports an archive holding several images with no tag to
	// pick one.
	ErrAmbiguous = errors.New("image: ambiguous")
	// ErrUnavailable reports a source that cannot be reached (no socket,
	// daemon not answering).
	ErrUnavailable = errors.New("image: source unavailable")
)
