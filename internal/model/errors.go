package model

import "errors"

// ErrInvalid is wrapped by every validation error of this package: a
// result or event that cannot be accepted as it is.
var ErrInvalid = errors.New("model: invalid")
