package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"

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

// ParsePolicy reads a policy file (the `check --policy` file or a repository's .sockembot.yml)
// over the defaults. Unknown keys are refused: a typo in a compliance setting must not silently
// fall back to a default.
func ParsePolicy(data []byte) (compliance.Policy, error) {
	p := compliance.DefaultPolicy()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return compliance.Policy{}, fmt.Errorf("policy: %w", err)
	}
	if err := p.Validate(); err != nil {
		return compliance.Policy{}, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}

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
