package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Retroactive review events, the Event of a retro_review record.
const (
	RetroOpened = "opened"
	RetroClosed = "closed"
)

// RetroReviewEvidence is the body of a retro_review record. An emergency deploy that overrode
// violations opens one per non-compliant change; a second person's approval afterwards closes it.
// The evidence is the state: an open review is one with an "opened" record and no "closed" one.
type RetroReviewEvidence struct {
	Event    string `json:"event"` // RetroOpened or RetroClosed
	DeployID int64  `json:"deploy_id"`
	Change   string `json:"change"` // "#12" or "direct push abc1234"
	Repo     string `json:"repo"`
	PRNumber int    `json:"pr_number,omitempty"`
	Author   string `json:"author,omitempty"` // GitHub login of the change's author
	// On opening: who asked for and who pressed the emergency deploy (Slack ids), where its
	// thread is, and when the review is due.
	Requester string    `json:"requester,omitempty"`
	Deployer  string    `json:"deployer,omitempty"`
	Service   string    `json:"service,omitempty"`
	Env       string    `json:"environment,omitempty"`
	Channel   string    `json:"channel,omitempty"`
	TS        string    `json:"ts,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Due       time.Time `json:"due,omitempty"`
	// On closing: who approved (a Slack id, or a GitHub login with Via "github_review") and how.
	By  string    `json:"by,omitempty"`
	Via string    `json:"via,omitempty"` // "slack" or "github_review"
	At  time.Time `json:"at"`
}

// RetroReview is one retroactive review as the evidence tells it.
type RetroReview struct {
	Opened RetroReviewEvidence
	Closed *RetroReviewEvidence
}

// Key identifies a review: a deploy and one of its changes.
func (r RetroReviewEvidence) Key() string { return fmt.Sprintf("deploy/%d %s", r.DeployID, r.Change) }

// RetroReviewSubject is the evidence subject of a deploy's retro reviews.
func RetroReviewSubject(deployID int64) string { return fmt.Sprintf("deploy/%d", deployID) }

// RetroReviews folds every retro_review record into reviews, oldest opening first. Emergency
// deploys are rare, so this reads them all.
func (s *Store) RetroReviews(ctx context.Context) ([]RetroReview, error) {
	byKey := map[string]*RetroReview{}
	var order []string
	err := s.Records(ctx, KindRetroReview, "", func(r Record) error {
		var ev RetroReviewEvidence
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return fmt.Errorf("store: retro_review %d: %w", r.Seq, err)
		}
		k := ev.Key()
		switch ev.Event {
		case RetroOpened:
			if _, ok := byKey[k]; !ok {
				byKey[k] = &RetroReview{Opened: ev}
				order = append(order, k)
			}
		case RetroClosed:
			if rv, ok := byKey[k]; ok && rv.Closed == nil {
				c := ev
				rv.Closed = &c
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]RetroReview, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Opened.At.Before(out[j].Opened.At) })
	return out, nil
}
