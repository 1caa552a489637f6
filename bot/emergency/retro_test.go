package emergency_test

import (
	"context"
	"testing"
	"time"

	"sockembot/bot/deploygate"
	"sockembot/bot/emergency"
	"sockembot/compliance"
	"sockembot/integrations/store"
	"sockembot/integrations/store/storetest"
)

// The reviews are the evidence: an "opened" record with no "closed" one is open, the first
// closing wins, and a closing of a review never opened is ignored.
func TestRetroReviewsFoldTheEvidence(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		add := func(ev emergency.RetroReviewEvidence) {
			t.Helper()
			if _, err := s.Append(ctx, compliance.Evidence{At: at, Kind: compliance.EvidenceRetroReview, Repo: "acme/search", Subject: deploygate.Subject(ev.DeployID), Body: ev}); err != nil {
				t.Fatal(err)
			}
		}
		add(emergency.RetroReviewEvidence{Event: "opened", DeployID: 4, Change: "#1", Repo: "acme/search", PRNumber: 1, Due: at.Add(48 * time.Hour), At: at})
		add(emergency.RetroReviewEvidence{Event: "opened", DeployID: 4, Change: "#2", Repo: "acme/search", PRNumber: 2, Due: at.Add(48 * time.Hour), At: at})
		add(emergency.RetroReviewEvidence{Event: "closed", DeployID: 4, Change: "#2", By: "U0BOB", Via: "slack", At: at.Add(time.Hour)})
		add(emergency.RetroReviewEvidence{Event: "closed", DeployID: 4, Change: "#2", By: "carol", Via: "github_review", At: at.Add(2 * time.Hour)})
		add(emergency.RetroReviewEvidence{Event: "closed", DeployID: 9, Change: "#7", By: "x", At: at}) // never opened: ignored
		rs, err := emergency.RetroReviews(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 2 || rs[0].Opened.Change != "#1" || rs[0].Closed != nil || rs[1].Closed == nil || rs[1].Closed.By != "U0BOB" {
			t.Fatalf("reviews %+v: want #1 open and #2 closed by the first closing", rs)
		}
	})
}
