package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"sockembot/compliance"
)

// RepoPolicyPath is where a repository keeps its own policy, on its default branch.
const RepoPolicyPath = ".sockembot.yml"

// GlobalPolicySource names the policy from the config (or `check --policy`) in evidence.
const GlobalPolicySource = "global"

// PolicyFiles reads a file of a repository; ref "" is the default branch. found is false when
// there is no such file.
type PolicyFiles interface {
	File(ctx context.Context, repo, path, ref string) (content []byte, found bool, err error)
}

// PolicyFileError is a repository policy that could not be read or is not valid. It fails the
// check closed: a policy nobody can read must not quietly become the global one.
type PolicyFileError struct {
	Repo string
	Err  error
}

func (e *PolicyFileError) Error() string {
	return fmt.Sprintf("%s in %s %v", RepoPolicyPath, e.Repo, e.Err)
}

func (e *PolicyFileError) Unwrap() error { return e.Err }

// PolicyFor is the policy that applies to repo: its own .sockembot.yml when it has one (read
// whole, over the defaults, like any policy file), else global. source says which, for evidence.
func (c *Checker) PolicyFor(ctx context.Context, repo string, global compliance.Policy) (p compliance.Policy, source string, err error) {
	if c.Files == nil {
		return global, GlobalPolicySource, nil
	}
	data, found, err := c.Files.File(ctx, repo, RepoPolicyPath, "")
	if err != nil {
		return compliance.Policy{}, "", &PolicyFileError{Repo: repo, Err: fmt.Errorf("could not be read: %w", err)}
	}
	if !found {
		return global, GlobalPolicySource, nil
	}
	p, err = ParsePolicy(data)
	if err != nil {
		return compliance.Policy{}, "", &PolicyFileError{Repo: repo, Err: fmt.Errorf("is invalid: %w", errors.Unwrap(err))}
	}
	return p, repo + "/" + RepoPolicyPath, nil
}

// statusErrorDescription is the commit status description of a check that could not run: a bad
// repository policy is named as such, so the author knows which file to fix.
func statusErrorDescription(err error) string {
	msg := "check could not run: " + err.Error()
	var pfe *PolicyFileError
	if errors.As(err, &pfe) {
		msg = pfe.Error()
	}
	return truncateRunes(strings.Join(strings.Fields(msg), " "), maxStatusDescription)
}
