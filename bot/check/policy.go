package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"sockembot/compliance"
)

// RepoPolicyPath is where a repository keeps its own policy.
const RepoPolicyPath = ".sockembot.yml"

// GlobalPolicySource names the policy from the config (or `check --policy`) in evidence.
const GlobalPolicySource = "global"

// PolicyFiles reads a repository's files at a commit. found is false only when the file is
// confirmed absent there; any doubt is an error.
type PolicyFiles interface {
	File(ctx context.Context, repo, path, ref string) (content []byte, found bool, err error)
	// PathCommits lists the commits reachable from ref that changed path, newest first.
	PathCommits(ctx context.Context, repo, ref, path string) ([]string, error)
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
	return parseOver(compliance.DefaultPolicy(), data, "policy")
}

// ParseFloor reads a policy floor (sockembot.yaml's policy_floor) over the loosest policy, so
// the floor holds repositories only to the settings it names.
func ParseFloor(data []byte) (compliance.Policy, error) {
	return parseOver(compliance.LoosestPolicy(), data, "policy_floor")
}

func parseOver(p compliance.Policy, data []byte, what string) (compliance.Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return compliance.Policy{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := p.Validate(); err != nil {
		return compliance.Policy{}, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}

// PolicyAt is the policy in force for repo at commit ref: the repository's own .sockembot.yml
// as it is at that commit (read whole, over the defaults), raised to the floor wherever it is
// looser, else the global policy. The owners and the floor are always the global policy's.
// source says which policy it is, for evidence and people.
func (c *Checker) PolicyAt(ctx context.Context, repo, ref string, global compliance.Policy) (p compliance.Policy, source string, err error) {
	if c.Files == nil {
		return global, GlobalPolicySource, nil
	}
	if ref == "" {
		return compliance.Policy{}, "", &PolicyFileError{Repo: repo, Err: errors.New("could not be read: the commit the policy in force is read at is unknown")}
	}
	data, found, err := c.Files.File(ctx, repo, RepoPolicyPath, ref)
	if err != nil {
		return compliance.Policy{}, "", &PolicyFileError{Repo: repo, Err: fmt.Errorf("could not be read: %w", err)}
	}
	if !found {
		return global, GlobalPolicySource, nil
	}
	p, err = ParsePolicy(data)
	if err != nil {
		return compliance.Policy{}, "", &PolicyFileError{Repo: repo, Err: fmt.Errorf("is invalid (at %s): %w", short(ref), errors.Unwrap(err))}
	}
	source = fmt.Sprintf("%s/%s@%s", repo, RepoPolicyPath, short(ref))
	floor := compliance.FloorOf(global)
	if loose := compliance.Loosenings(p, floor); len(loose) > 0 {
		// Already in force (it reached the branch before the floor, or past the gate): it
		// cannot be refused any more, so it is raised to the floor, and says so.
		p = compliance.Tighten(p, floor)
		source += " raised to the policy floor (" + strings.Join(loose, "; ") + ")"
	}
	p.Owners, p.Floor = global.Owners, &floor
	return p, source, nil
}

// policyEdits marks each change of rng that edits the policy file with what it writes there.
// touched are the commits that changed the file up to the range's head, newest first, listed
// once for the whole range (GET /commits?path=).
func (c *Checker) policyEdits(ctx context.Context, rng *compliance.Range, touched []string) error {
	repo := rng.Repo
	if len(touched) == 0 {
		return nil
	}
	newest := make(map[string]int, len(touched)) // sha → position, newest first
	for i, sha := range touched {
		newest[sha] = i
	}
	for i := range rng.Changes {
		ch := &rng.Changes[i]
		var commits []string
		last, lastAt := "", len(touched)
		for _, sha := range ch.RangeCommits {
			if at, ok := newest[sha]; ok {
				commits = append(commits, sha)
				if at < lastAt {
					last, lastAt = sha, at
				}
			}
		}
		if len(commits) == 0 {
			continue
		}
		edit := &compliance.PolicyEdit{Path: RepoPolicyPath, Commits: commits}
		data, found, err := c.Files.File(ctx, repo, RepoPolicyPath, last)
		switch {
		case err != nil:
			return Errorf("read %s as %s leaves it: %w", RepoPolicyPath, short(last), err)
		case !found:
			edit.Deleted = true
		default:
			if p, err := ParsePolicy(data); err != nil {
				edit.Invalid = errors.Unwrap(err).Error()
			} else {
				edit.Policy = &p
			}
		}
		ch.PolicyEdit = edit
	}
	return nil
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
