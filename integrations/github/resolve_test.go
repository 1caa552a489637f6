package github_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

const routeResolve = "GET /repos/{owner}/{repo}/commits/{ref}"

// A full SHA is its own answer: Gather asks GitHub to resolve only refs that are not.
func TestGatherDoesNotResolveFullSHAs(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	pr := r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Commits: 2}, fakegithub.MergeCommit)
	c := newClient(t, s, github.Options{})
	ctx := context.Background()

	rng, err := c.Gather(ctx, "acme/payments", base, pr.MergeSHA)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{prWant(pr)}; !reflect.DeepEqual(summary(rng.Changes), want) || rng.BaseSHA != base || rng.HeadSHA != pr.MergeSHA {
		t.Fatalf("range %s..%s: %v, want %v", rng.BaseSHA, rng.HeadSHA, summary(rng.Changes), want)
	}
	if n := s.Count(routeResolve); n != 0 {
		t.Errorf("resolved two full SHAs with %d requests, want none: %v", n, s.Counts())
	}

	// A branch (or tag, or short SHA) is still resolved, once.
	s.ResetLog()
	if rng, err := c.Gather(ctx, "acme/payments", base, "main"); err != nil || rng.HeadSHA != pr.MergeSHA {
		t.Fatalf("base..main: %+v, %v", rng, err)
	}
	if n := s.Count(routeResolve); n != 1 {
		t.Errorf("resolve requests for one SHA and one branch: %d, want 1", n)
	}
}

// A full SHA GitHub does not know is not looked up first, but the range still fails: compare
// answers 404, ErrNotFound, and the error names the compare and the SHA.
func TestGatherUnknownFullSHAIsErrNotFound(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice"}, fakegithub.MergeCommit)
	c := newClient(t, s, github.Options{})
	unknown := strings.Repeat("ab", 20)
	for _, ends := range [][2]string{{unknown, "main"}, {base, unknown}} {
		rng, err := c.Gather(context.Background(), "acme/payments", ends[0], ends[1])
		t.Log(err)
		if !errors.Is(err, github.ErrNotFound) || !strings.Contains(err.Error(), "compare") || !strings.Contains(err.Error(), unknown[:12]) {
			t.Errorf("Gather %s..%s = %d changes, %v; want ErrNotFound from compare naming %s", ends[0], ends[1], len(rng.Changes), err, unknown[:12])
		}
	}
	if n := s.Count(routeResolve); n != 1 { // "main" only
		t.Errorf("resolve requests: %d, want 1 (%v)", n, s.Counts())
	}
}
