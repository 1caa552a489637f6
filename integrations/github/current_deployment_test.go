package github_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

const (
	routeListDeployments    = "GET /repos/{owner}/{repo}/deployments"
	routeDeploymentStatuses = "GET /repos/{owner}/{repo}/deployments/{id}/statuses"
)

// deployed records deployments to production, oldest first, one per latest status (the fake,
// like GitHub, marks an earlier successful deployment inactive when a later one succeeds), and
// returns their IDs.
func deployed(r *fakegithub.Repo, states ...string) []int64 {
	var ids []int64
	for i, st := range states {
		ids = append(ids, r.Deploy(r.Commit(fmt.Sprintf("release %d", i+1), "alice"), "production", st))
	}
	return ids
}

// statusesAsked is the deployments whose statuses were requested, in request order.
func statusesAsked(s *fakegithub.Server) []int64 {
	var out []int64
	for _, rq := range s.Requests() {
		if rq.Route == routeDeploymentStatuses {
			parts := strings.Split(rq.Path, "/")
			id, _ := strconv.ParseInt(parts[len(parts)-2], 10, 64)
			out = append(out, id)
		}
	}
	return out
}

func TestCurrentDeploymentIsTwoRequestsWhenTheNewestSucceeded(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	ids := deployed(r, "success", "success", "success")
	c := newClient(t, s, github.Options{})
	s.ResetLog()
	_, id, found, err := c.CurrentDeployment(context.Background(), "acme/payments", "production")
	if err != nil || !found || id != ids[2] {
		t.Fatalf("CurrentDeployment = %d %v %v; want %d", id, found, err, ids[2])
	}
	if s.Total() != 2 || s.Count(routeListDeployments) != 1 || s.Count(routeDeploymentStatuses) != 1 {
		t.Errorf("requests: %v, want one list and one status request", s.Counts())
	}
}

// A newer deployment whose latest status is not success (failed, errored, still in progress,
// made inactive) is passed over for the newest one that succeeded; the ones older than it are
// not asked about beyond its wave.
func TestCurrentDeploymentPassesOverNewerUnsuccessful(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	// Latest statuses, oldest first: inactive (the second's success did that), success,
	// failure, in_progress, inactive, error.
	ids := deployed(r, "success", "success", "failure", "in_progress", "inactive", "error")
	c := newClient(t, s, github.Options{Concurrency: 2})
	s.ResetLog()
	sha, id, found, err := c.CurrentDeployment(context.Background(), "acme/payments", "production")
	if err != nil || !found || id != ids[1] || sha != r.Deployments()[1].SHA {
		t.Fatalf("CurrentDeployment = %s %d %v %v; want the second deployment, %d", sha, id, found, err, ids[1])
	}
	// Waves of the newest alone, then two at a time: [6] [5 4] [3 2]; the first is never asked.
	asked := statusesAsked(s)
	slices.Sort(asked)
	if want := ids[1:]; !slices.Equal(asked, want) || s.Count(routeListDeployments) != 1 {
		t.Errorf("statuses asked of %v, want %v; %v", asked, want, s.Counts())
	}
}

func TestCurrentDeploymentFailureThenSuccess(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	ids := deployed(r, "success", "success", "failure") // the newest failed: the second runs
	c := newClient(t, s, github.Options{})
	s.ResetLog()
	_, id, found, err := c.CurrentDeployment(context.Background(), "acme/payments", "production")
	if err != nil || !found || id != ids[1] {
		t.Fatalf("CurrentDeployment = %d %v %v; want %d", id, found, err, ids[1])
	}
	// The newest alone, then the other two together.
	if n := s.Count(routeDeploymentStatuses); n != 3 || s.Total() != 4 {
		t.Errorf("requests: %v, want one list and 3 status requests", s.Counts())
	}
}

func TestCurrentDeploymentNothingDeployed(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	r.Deploy(r.Head(), "staging", "success") // another environment
	c := newClient(t, s, github.Options{})
	s.ResetLog()
	if sha, id, found, err := c.CurrentDeployment(context.Background(), "acme/payments", "production"); err != nil || found || sha != "" || id != 0 {
		t.Fatalf("CurrentDeployment = %q %d %v %v; want none", sha, id, found, err)
	}
	if s.Total() != 1 || s.Count(routeListDeployments) != 1 {
		t.Errorf("requests: %v, want the list only", s.Counts())
	}
}

func TestCurrentDeploymentNoSuccess(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	ids := deployed(r, "failure", "error", "inactive", "in_progress", "queued")
	c := newClient(t, s, github.Options{Concurrency: 2})
	s.ResetLog()
	if sha, id, found, err := c.CurrentDeployment(context.Background(), "acme/payments", "production"); err != nil || found || sha != "" || id != 0 {
		t.Fatalf("CurrentDeployment = %q %d %v %v; want none", sha, id, found, err)
	}
	asked := statusesAsked(s)
	slices.Sort(asked)
	if !slices.Equal(asked, ids) || s.Count(routeListDeployments) != 1 {
		t.Errorf("statuses asked of %v, want every deployment %v", asked, ids)
	}
}

// A page of deployments none of which runs: the next page is listed.
func TestCurrentDeploymentPagesOn(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	states := []string{"success"}
	for range 100 {
		states = append(states, "failure")
	}
	ids := deployed(r, states...)
	c := newClient(t, s, github.Options{})
	s.ResetLog()
	_, id, found, err := c.CurrentDeployment(context.Background(), "acme/payments", "production")
	if err != nil || !found || id != ids[0] {
		t.Fatalf("CurrentDeployment = %d %v %v; want the oldest, %d", id, found, err, ids[0])
	}
	if n, m := s.Count(routeListDeployments), s.Count(routeDeploymentStatuses); n != 2 || m != 101 {
		t.Errorf("%d list pages and %d status requests, want 2 and 101", n, m)
	}
}

// A status request that fails, for a deployment newer than any that succeeded, fails the call:
// what runs is unknown, which is not "nothing runs".
func TestCurrentDeploymentStatusErrorFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		failOn int // index into the deployments, oldest first
		status int
	}{
		{"newest", 2, http.StatusInternalServerError},
		{"in a later wave", 1, http.StatusBadGateway},
		{"not found", 1, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r, _ := oneCommitRepo(t, fakegithub.Options{})
			ids := deployed(r, "success", "failure", "failure")
			c := newClient(t, s, github.Options{Retries: -1})
			s.FailNext(1, fmt.Sprintf("/deployments/%d/statuses", ids[tc.failOn]), tc.status)
			sha, id, found, err := c.CurrentDeployment(context.Background(), "acme/payments", "production")
			if err == nil || found || sha != "" || id != 0 || !strings.Contains(err.Error(), strconv.FormatInt(ids[tc.failOn], 10)) {
				t.Fatalf("CurrentDeployment = %q %d %v %v; want an error naming deployment %d", sha, id, found, err, ids[tc.failOn])
			}
		})
	}
	// One older than the deployment that runs changes nothing, as it never mattered.
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	ids := deployed(r, "failure", "success", "failure")
	c := newClient(t, s, github.Options{Retries: -1})
	s.FailNext(1, fmt.Sprintf("/deployments/%d/statuses", ids[0]), http.StatusInternalServerError)
	if _, id, found, err := c.CurrentDeployment(context.Background(), "acme/payments", "production"); err != nil || !found || id != ids[1] {
		t.Fatalf("CurrentDeployment = %d %v %v; want %d", id, found, err, ids[1])
	}
}
