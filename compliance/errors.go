package compliance

import "errors"

// Error kinds the gates act on. Each adapter translates its own failures into these once (a 404,
// a missing row), so a gate can tell "the person asked for something that is not there" from
// "sockembot broke" without knowing which system answered.
var (
	// ErrNotFound: the thing asked for does not exist (a ref, a file, a deploy, a record).
	ErrNotFound = errors.New("not found")
	// ErrHeadBehindBase: a range whose head is behind its base (a rollback, or swapped refs):
	// there is no forward range of changes to check.
	ErrHeadBehindBase = errors.New("head is behind base")
	// ErrOutcomeUnknown: a request that must not be sent twice got no clear answer (a timeout,
	// a 5xx): the other side may or may not have acted on it.
	ErrOutcomeUnknown = errors.New("the other side may or may not have acted on it")
	// ErrAlreadyAnswered: a question that takes one answer (a deployment protection rule) was
	// answered before; GitHub refuses a second.
	ErrAlreadyAnswered = errors.New("already answered")
)
