package audit

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"sockembot/bot/check"
	"sockembot/bot/deploygate"
	"sockembot/bot/emergency"
	"sockembot/bot/mergegate"
	"sockembot/compliance"
)

// The sample: N changes drawn uniformly, without replacement, from the changes deployed in the
// period, in a way an auditor can re-draw. The population is every change of every
// deployment_created record of the period (and environment), in chain order, change by change
// as the record lists them; the positions drawn come from the seed alone. So the same store and
// the same seed always give the same sample, whoever runs it.

// sampleStream is the stream the seed starts: PCG-DXSM (math/rand/v2's PCG) seeded with
// (seed, sampleStream). Its output is fixed by the Go 1 compatibility promise for math/rand/v2's
// generators; the draws below use only its Uint64, so nothing else can change the sample.
const sampleStream = 0x736f636b656d626f // "sockembo"

// RandomSeed is a seed for a report whose auditor chose none: short enough to type back.
func RandomSeed() uint64 {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano()) % 1_000_000_000
	}
	return binary.BigEndian.Uint64(b[:])%999_999_999 + 1
}

// below draws uniformly from [0, n) by rejection, so no value is more likely than another.
func below(r *rand.PCG, n uint64) uint64 {
	limit := ^uint64(0) - ^uint64(0)%n // the largest multiple of n, exclusive
	for {
		if v := r.Uint64(); v < limit {
			return v % n
		}
	}
}

// samplePicks draws k distinct positions of [0, n) with Floyd's algorithm (memory grows with k,
// not n), sorted. k ≥ n takes every position.
func samplePicks(seed uint64, n, k int) []int {
	if k >= n {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return all
	}
	r := rand.NewPCG(seed, sampleStream)
	picked := make(map[int]bool, k)
	for j := n - k; j < n; j++ {
		t := int(below(r, uint64(j+1)))
		if picked[t] {
			t = j
		}
		picked[t] = true
	}
	out := make([]int, 0, k)
	for p := range picked {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// recordRef names an evidence record: what an auditor looks up, and the hash (or MAC) that
// pins it in the chain.
type recordRef struct {
	Kind string
	Seq  int64
	Hash string
	At   time.Time
}

func refOf(r compliance.Record) recordRef {
	return recordRef{Kind: r.Kind, Seq: r.Seq, Hash: r.Hash, At: r.At}
}

// approvalSeen is one counted approval, with the commit it was given on.
type approvalSeen struct {
	User   string
	At     time.Time
	Commit string
	Final  bool // on the pull request's final commit
}

// sampled is one change of the sample, with everything that backs it.
type sampled struct {
	Position int // in the population, from 1
	Deploy   deploygate.DeploymentEvidence
	Change   compliance.ChangeReport
	Record   recordRef // the deployment_created record
	Status   string    // the deployment's latest state on GitHub, as recorded
	Approved []approvalSeen
	// The other records behind it: the check the deploy went out on, the merge verdict, the
	// pull request's facts as first fetched, and the retroactive review of an override.
	Evidence []recordRef
	Retro    *emergency.RetroReview
	Problems []string // a backing record that could not be read or does not match
}

// drawSample walks the period's deploys and keeps the changes at picks, then reads the records
// behind each one.
func (w *reportWalk) drawSample(ctx context.Context, picks []int, retro map[string]emergency.RetroReview, statuses map[int64]deploygate.DeploymentStatusEvidence) ([]sampled, error) {
	if len(picks) == 0 {
		return nil, nil
	}
	var out []sampled
	pos := 0
	err := w.period(ctx, compliance.EvidenceDeploymentCreated, func(r compliance.Record) error {
		d, err := decode[deploygate.DeploymentEvidence](r)
		if err != nil || !w.envOK(d.Environment) {
			return err
		}
		changes := d.Report.Changes
		d.Report.Changes = nil // each sampled change keeps its own
		for _, c := range changes {
			if len(out) < len(picks) && picks[len(out)] == pos {
				out = append(out, sampled{Position: pos + 1, Deploy: d, Change: c, Record: refOf(r), Status: statuses[d.GitHubDeploymentID].State})
			}
			pos++
		}
		if len(out) == len(picks) {
			return errStop
		}
		return nil
	})
	if err = stopped(err); err != nil {
		return nil, err
	}
	for i := range out {
		if err := w.backSample(ctx, &out[i], retro); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// backSample reads the records behind a sampled change: the check_run the deploy went out on (and
// in it, the commit each approval was given on), the merge verdict, the facts record, and the
// retroactive review of an override.
func (w *reportWalk) backSample(ctx context.Context, s *sampled, retro map[string]emergency.RetroReview) error {
	for _, a := range s.Change.Approvals {
		s.Approved = append(s.Approved, approvalSeen{User: a.User, At: a.At})
	}
	if s.Deploy.CheckSeq != 0 {
		rec, found, err := w.st.RecordAt(ctx, s.Deploy.CheckSeq)
		switch {
		case err != nil:
			return err
		case !found || rec.Kind != compliance.EvidenceCheckRun:
			s.Problems = append(s.Problems, "the check_run record the deploy names is missing")
		default:
			s.Evidence = append(s.Evidence, refOf(rec))
			run, err := decode[check.CheckRunEvidence](rec)
			if err != nil {
				s.Problems = append(s.Problems, err.Error())
			} else {
				approvalCommits(s, run)
			}
		}
	}
	if s.Change.Number != 0 {
		var last *compliance.Record
		err := w.st.Records(ctx, compliance.EvidenceMergeVerdict, mergegate.Subject(s.Deploy.Repo, s.Change.Number), func(r compliance.Record) error {
			if r.Seq <= w.upto {
				last = &r
			}
			return nil
		})
		if err != nil {
			return err
		}
		if last != nil {
			s.Evidence = append(s.Evidence, refOf(*last))
		}
	}
	if s.Change.Recorded != nil {
		rec, found, err := w.st.RecordAt(ctx, s.Change.Recorded.Seq)
		if err != nil {
			return err
		}
		if found && rec.Kind == compliance.EvidencePullFacts {
			s.Evidence = append(s.Evidence, refOf(rec))
		} else {
			s.Problems = append(s.Problems, "the pull_request_facts record the check names is missing")
		}
	}
	if s.Deploy.Override != nil {
		if rv, ok := retro[emergency.RetroReviewEvidence{DeployID: s.Deploy.DeployID, Change: s.Change.Name()}.Key()]; ok {
			s.Retro = &rv
		}
	}
	sort.SliceStable(s.Evidence, func(i, j int) bool { return s.Evidence[i].Seq < s.Evidence[j].Seq })
	return nil
}

// approvalCommits finds, in the facts the check judged, the review behind each counted approval:
// which commit it was given on, and whether that is the pull request's final commit.
func approvalCommits(s *sampled, run check.CheckRunEvidence) {
	for _, ch := range run.Facts.Range.Changes {
		if ch.PR == nil || ch.PR.Number != s.Change.Number || s.Change.Number == 0 {
			continue
		}
		for i, a := range s.Approved {
			for _, r := range ch.PR.Reviews {
				if strings.EqualFold(r.User, a.User) && r.SubmittedAt.Equal(a.At) {
					s.Approved[i].Commit = r.CommitID
					s.Approved[i].Final = r.CommitID != "" && r.CommitID == ch.PR.HeadSHA
				}
			}
		}
		return
	}
}
