package bot

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"

	"sockembot/integrations/store"
)

// A crash between "Deploy pressed" (the deploy claimed, confirming) and the end of
// createDeployment leaves a deploy confirming. The reconcile job settles it from what GitHub has.
func TestInterruptedConfirmationsAreSettled(t *testing.T) {
	for _, created := range []bool{true, false} {
		name := map[bool]string{true: "GitHub has the deployment", false: "GitHub never got it"}[created]
		t.Run(name, func(t *testing.T) {
			r, clk := emergencyRig(t)
			ctx := context.Background()
			r.command(demoAlice, demoRelease, "payments to production")
			root := r.digest(1)
			// Ready, with its digest's ts saved (the state is set just before the digest is posted).
			r.until("the deploy ready", func() bool {
				d := r.deploys("payments", "production")[0]
				return d.State == store.StateReady && d.TS != ""
			})
			d := r.deploys("payments", "production")[0]
			// The process dies right after claiming the confirmation ...
			if ok, err := r.Store.TransitionDeploy(ctx, d.ID, store.StateReady, store.StateConfirming); err != nil || !ok {
				t.Fatalf("claim: %v %v", ok, err)
			}
			var ghID int64
			if created {
				// ... after GitHub created the deployment, before sockembot saved its id.
				dep, _, err := r.CD.Repositories.CreateDeployment(ctx, "acme", "payments", &gh.DeploymentRequest{
					Ref: gh.String(d.HeadSHA), Environment: gh.String("production"), AutoMerge: gh.Bool(false), RequiredContexts: &[]string{},
					Payload: deploymentPayload{Sockembot: deploymentRef{DeployID: d.ID, Service: "payments", Requester: demoAlice}},
				})
				if err != nil {
					t.Fatal(err)
				}
				ghID = dep.GetID()
			}
			// Not yet: a confirmation may still be in flight.
			if n, err := r.App.RecoverInterrupted(ctx); err != nil || n != 0 {
				t.Fatalf("recovered %d (%v) while the confirmation may still be running", n, err)
			}
			clk.Set(time.Now().Add(time.Hour))
			if n, err := r.App.RecoverInterrupted(ctx); err != nil || n != 1 {
				t.Fatalf("recovered %d: %v", n, err)
			}
			got := r.deploys("payments", "production")[0]
			if created {
				if got.State != store.StateDeployed || got.GitHubDeploymentID != ghID {
					t.Fatalf("deploy %+v, want deployed as GitHub deployment %d", got, ghID)
				}
				var ev store.DeploymentEvidence
				recs := r.records(store.KindDeploymentCreated)
				if len(recs) != 1 || json.Unmarshal(recs[0].Body, &ev) != nil || ev.GitHubDeploymentID != ghID {
					t.Fatalf("deployment evidence %+v", ev)
				}
				if !threadSays(r, root, "interrupted after GitHub created deployment") {
					t.Errorf("thread:\n%s", r.Slack.Render())
				}
			} else {
				if got.State != store.StateFailed {
					t.Fatalf("deploy state %s, want failed", got.State)
				}
				if !threadSays(r, root, "*nothing was deployed*") {
					t.Errorf("thread:\n%s", r.Slack.Render())
				}
				if n := r.GitHub.Count(deployRoute); n != 0 {
					t.Errorf("%d deployments created by recovery: it must never press Deploy itself", n)
				}
			}
			// Settled once.
			if n, err := r.App.RecoverInterrupted(ctx); err != nil || n != 0 {
				t.Fatalf("second pass settled %d (%v)", n, err)
			}
			if strings.Contains(r.Slack.Render(), "sockembot failed") {
				t.Errorf("a failure report:\n%s", r.Slack.Render())
			}
		})
	}
}

// A crash after the deployment was recorded but before the deploy was marked deployed: the
// recover job finishes the move without a second record.
func TestInterruptedAfterTheRecordIsSettledOnce(t *testing.T) {
	r, clk := emergencyRig(t)
	ctx := context.Background()
	r.command(demoAlice, demoRelease, "payments to production")
	r.digest(1)
	r.until("the deploy ready", func() bool {
		d := r.deploys("payments", "production")[0]
		return d.State == store.StateReady && d.TS != ""
	})
	d := r.deploys("payments", "production")[0]
	if ok, err := r.Store.TransitionDeploy(ctx, d.ID, store.StateReady, store.StateConfirming); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	dep, _, err := r.CD.Repositories.CreateDeployment(ctx, "acme", "payments", &gh.DeploymentRequest{
		Ref: gh.String(d.HeadSHA), Environment: gh.String("production"), AutoMerge: gh.Bool(false), RequiredContexts: &[]string{},
		Payload: deploymentPayload{Sockembot: deploymentRef{DeployID: d.ID, Service: "payments", Requester: demoAlice}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Store.AppendOnce(ctx, store.KindDeploymentCreated, deploySubject(d.ID), store.Evidence{
		Kind: store.KindDeploymentCreated, Repo: d.Repo, Subject: deploySubject(d.ID),
		Body: store.DeploymentEvidence{DeployID: d.ID, GitHubDeploymentID: dep.GetID(), Repo: d.Repo}}); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Now().Add(time.Hour))
	if _, err := r.App.RecoverInterrupted(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.deploys("payments", "production")[0]; got.State != store.StateDeployed || got.GitHubDeploymentID != dep.GetID() {
		t.Fatalf("deploy %+v, want deployed as %d", got, dep.GetID())
	}
	if n := len(r.records(store.KindDeploymentCreated)); n != 1 {
		t.Fatalf("%d deployment_created records, want 1", n)
	}
}
