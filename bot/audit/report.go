package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"sockembot/bot/check"
	"sockembot/bot/deploygate"
	"sockembot/bot/emergency"
	"sockembot/bot/mergegate"
	"sockembot/compliance"
	"sockembot/integrations/store"
)

// The auditor's report: one self-contained HTML file that answers the three questions of a test
// of the change-management control. Is the population complete (every change that reached an
// environment is accounted for)? What share followed the policy, and where are the exceptions?
// Show me N changes drawn at random, with their evidence. It reads the evidence store only (and
// GitHub, when asked to compare with it), in several streaming walks, each filtered to what it
// needs: memory holds the figures, one small window per environment, and the sample.

// ReportStore is what the report reads: the evidence, and the chain's check.
type ReportStore interface {
	Store
	RecordAt(ctx context.Context, seq int64) (compliance.Record, bool, error)
	Verify(ctx context.Context) (store.VerifyResult, error)
}

// ReportGitHub is what the report asks GitHub with --github: the deployments it knows of, and the
// default branch's commits, to find what reached an environment or the branch outside sockembot.
type ReportGitHub interface {
	DefaultBranch(ctx context.Context, repo string) (name, sha string, err error)
	Deployments(ctx context.Context, repo, env string, from, to time.Time) ([]compliance.Deployment, error)
	BranchCommits(ctx context.Context, repo, branch string, from, to time.Time) ([]compliance.Commit, error)
}

// MaxSample bounds --sample: each sampled change is a few lookups and a card in the file.
const MaxSample = 1000

// MaxReportWeeks bounds the period to what a weekly chart can show (five years).
const MaxReportWeeks = 262

// ReportQuery is one report: the period [From, To), optionally one repository and one
// environment, the sample's size and seed.
type ReportQuery struct {
	From, To time.Time
	Repo     string
	Env      string
	Sample   int
	// Seed draws the sample; SeedGiven says the auditor chose it (else it was drawn at random).
	Seed      uint64
	SeedGiven bool
	// Generated is when the report was made; Version names the sockembot that made it.
	Generated time.Time
	Version   string
	// GitHub, when set, is asked what reached each environment and default branch outside
	// sockembot.
	GitHub ReportGitHub
	// Command is the command line that re-draws the same report (shown in the report).
	Command string
}

// Validate refuses a query no report can be made of.
func (q ReportQuery) Validate() error {
	if err := (store.Period{From: q.From, To: q.To}).Validate(); err != nil {
		return err
	}
	if n := len(weeksOf(q.From, q.To)); n > MaxReportWeeks {
		return fmt.Errorf("the period spans %d weeks; a report covers at most %d (five years): make one per year", n, MaxReportWeeks)
	}
	if q.Sample < 0 || q.Sample > MaxSample {
		return fmt.Errorf("the sample must be between 0 and %d changes (got %d)", MaxSample, q.Sample)
	}
	return nil
}

// ChainCheck is the evidence chain as checked when the report was made.
type ChainCheck struct {
	// State is "intact", "BROKEN", "EMPTY" or "NOT VERIFIED" (no evidence key, or nothing
	// keyed: only the links were checked).
	State    string
	Records  int64
	HeadSeq  int64
	HeadHash string
	FirstBad int64
	Problem  string
}

const (
	chainIntact      = "intact"
	chainBroken      = "BROKEN"
	chainNotVerified = "NOT VERIFIED"
	chainEmpty       = "EMPTY"
)

// Line is the chain's check as the report's header says it.
func (c ChainCheck) Line() string {
	switch c.State {
	case chainIntact:
		return fmt.Sprintf("Evidence chain: intact (%d records, head %s)", c.Records, c.HeadHash)
	case chainBroken:
		return fmt.Sprintf("Evidence chain: BROKEN at record %d (%s)", c.FirstBad, c.Problem)
	case chainEmpty:
		return "Evidence chain: EMPTY (the store holds no records: DATABASE_URL names another database, or every record was removed)"
	}
	return fmt.Sprintf("Evidence chain: NOT VERIFIED (%s; %d records, head %s)", c.Problem, c.Records, c.HeadHash)
}

// Intact says whether the chain checked out, MACs and all.
func (c ChainCheck) Intact() bool { return c.State == chainIntact }

// Unverified says the chain could not be checked (no evidence key, or nothing keyed), which is
// neither intact nor shown to be broken.
func (c ChainCheck) Unverified() bool { return c.State == chainNotVerified }

// ReportOutcome is what the command says after writing the report.
type ReportOutcome struct {
	Chain      ChainCheck
	Seed       uint64
	Population int // deployed changes the sample was drawn from
	Sampled    int
	Gaps       int // deploys whose base is not the previous recorded head
	// The headline figures, for whoever ran the command.
	Deploys        int
	CompliantShare string
	Exceptions     int
}

// checkChain verifies the whole chain, as audit verify does, and says so in one line.
func checkChain(ctx context.Context, st ReportStore) (ChainCheck, error) {
	res, err := st.Verify(ctx)
	if err != nil {
		return ChainCheck{}, err
	}
	switch {
	case !res.OK:
		return ChainCheck{State: chainBroken, Records: res.Checked, FirstBad: res.FirstBad, Problem: res.Problem}, nil
	case res.Checked == 0:
		return ChainCheck{State: chainEmpty}, nil
	case !res.MACsChecked && res.Keyed() > 0:
		return ChainCheck{State: chainNotVerified, Records: res.Checked, HeadSeq: res.HeadSeq, HeadHash: res.HeadHash,
			Problem: "SOCKEMBOT_EVIDENCE_KEY is not set, so only the links were checked, not the MACs"}, nil
	case res.Keyed() == 0:
		return ChainCheck{State: chainNotVerified, Records: res.Checked, HeadSeq: res.HeadSeq, HeadHash: res.HeadHash,
			Problem: "no record is keyed yet, so anyone with write access to the database could have rewritten them"}, nil
	}
	return ChainCheck{State: chainIntact, Records: res.Checked, HeadSeq: res.HeadSeq, HeadHash: res.HeadHash}, nil
}

// week is one week's figures (weeks start on Monday, UTC).
type week struct {
	Start                time.Time
	Deploys              int
	Changes, Compliant   int
	Refused, Emergencies int
	NonCompliantMerges   int
	DirectPushes         int
}

// weekStart is the Monday 00:00 UTC of t's week.
func weekStart(t time.Time) time.Time {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

// weeksOf lists the weeks [from, to) touches.
func weeksOf(from, to time.Time) []time.Time {
	var out []time.Time
	for w := weekStart(from); w.Before(to); w = w.AddDate(0, 0, 7) {
		out = append(out, w)
		if len(out) > MaxReportWeeks {
			break
		}
	}
	return out
}

// count is a name and how many.
type count struct {
	Name string
	N    int
}

// policyUse is one policy that judged changes in the period.
type policyUse struct {
	Hash, Source string
	Decisions    int
	First, Last  time.Time
}

// retroFigures sums up the retroactive reviews of the period's emergency deploys.
type retroFigures struct {
	Opened, Closed, Open, Overdue int
	// Days to close, of those closed: the median and the longest.
	MedianDays, MaxDays float64
}

// figures is everything the header and the summary show: counted in one walk of the period.
type figures struct {
	Repos            []string
	Deploys          int
	ByEnv            []count
	CompliantDeploys int
	Changes          int
	CompliantChanges int
	Overridden       int // deploys past violations (emergencies)
	Emergencies      int // emergency deploy requests
	Refused          int
	RefusedBy        []count // by why
	Denied           int     // attempts refused for want of a role or a lock
	Merges           int
	CompliantMerges  int
	DirectPushes     int
	Checks           int
	Policies         []policyUse
	Retro            retroFigures
	Weeks            []week
	Records          int // records of the period read
}

// CompliantShare is the compliant share of the changes deployed, in percent ("–" when none).
func (f figures) CompliantShare() string {
	if f.Changes == 0 {
		return "–"
	}
	return percent(f.CompliantChanges, f.Changes)
}

func percent(n, of int) string {
	if of == 0 {
		return "–"
	}
	p := float64(n) * 100 / float64(of)
	if n != of && p > 99.9 {
		p = 99.9 // never round a miss up to 100 %
	}
	return fmt.Sprintf("%.1f %%", p)
}

// refusalKind says why a deploy was refused, in the words of the summary.
func refusalKind(ev deploygate.DeployRefusedEvidence) string {
	switch {
	case len(ev.Violations) > 0:
		return "not compliant"
	case ev.Error != "":
		return "the check could not run"
	case strings.HasPrefix(ev.Reason, "superseded"):
		return "superseded by a later request"
	}
	return "other"
}

// reportWalk holds what every walk shares: the period, the filters, and the last record of the
// chain the report reads (records appended while it is made are left out, so every walk sees the
// same population and a seed draws the same sample).
type reportWalk struct {
	st   ReportStore
	q    ReportQuery
	upto int64
}

// envOK says whether a record of env is in the report.
func (w *reportWalk) envOK(env string) bool { return w.q.Env == "" || strings.EqualFold(env, w.q.Env) }

// period walks the period's records (of the repository, and of kind when set), in chain order.
func (w *reportWalk) period(ctx context.Context, kind string, fn func(compliance.Record) error) error {
	return w.since(ctx, w.q.From, w.q.To, kind, fn)
}

// since walks the records of kind made in [from, to) (from the start of time when from is zero,
// to the end when to is) up to the report's last record.
func (w *reportWalk) since(ctx context.Context, from, to time.Time, kind string, fn func(compliance.Record) error) error {
	if from.IsZero() {
		from = time.Unix(0, 0).UTC()
	}
	return w.st.Events(ctx, store.Period{From: from, To: to, Repo: w.q.Repo, Kind: kind}, func(r compliance.Record) error {
		if r.Seq > w.upto {
			return errStop
		}
		return fn(r)
	})
}

// errStop ends a walk early, and is not an error.
var errStop = errors.New("stop")

func stopped(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// Slim views of the records the walks read most: only the fields they use, so decoding skips the
// facts and reports that make up most of a record's bytes. The JSON names are the records' own.
type (
	deployView struct {
		DeployID           int64                `json:"deploy_id"`
		Service            string               `json:"service"`
		Environment        string               `json:"environment"`
		Repo               string               `json:"repo"`
		SHA                string               `json:"sha"`
		BaseSHA            string               `json:"base_sha"`
		GitHubDeploymentID int64                `json:"github_deployment_id"`
		PolicyHash         string               `json:"policy_hash"`
		PolicySource       string               `json:"policy_source"`
		Compliant          bool                 `json:"compliant"`
		Override           *deploygate.Override `json:"override"`
		Report             struct {
			Changes []changeView `json:"changes"`
		} `json:"report"`
	}
	changeView struct {
		Kind      compliance.Kind `json:"kind"`
		Number    int             `json:"number"`
		Commits   []string        `json:"commits"`
		Compliant bool            `json:"compliant"`
	}
	// verdictView reads a check_run or merge_verdict record's verdict and policy.
	verdictView struct {
		PolicyHash   string `json:"policy_hash"`
		PolicySource string `json:"policy_source"`
		Compliant    bool   `json:"compliant"`
	}
)

// Name names the change as compliance.ChangeReport.Name does.
func (c changeView) Name() string {
	return compliance.ChangeReport{Kind: c.Kind, Number: c.Number, Commits: c.Commits}.Name()
}

func decode[T any](r compliance.Record) (T, error) {
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return v, fmt.Errorf("record %d (%s): %w", r.Seq, r.Kind, err)
	}
	return v, nil
}

// count walks the period once and counts everything the header, the summary and the charts show.
func (w *reportWalk) count(ctx context.Context, retro map[string]emergency.RetroReview) (figures, error) {
	f := figures{}
	weeks := weeksOf(w.q.From, w.q.To)
	f.Weeks = make([]week, len(weeks))
	for i, s := range weeks {
		f.Weeks[i].Start = s
	}
	first := weeks[0]
	at := func(t time.Time) *week {
		i := int(weekStart(t).Sub(first).Hours() / (24 * 7))
		return &f.Weeks[min(max(i, 0), len(f.Weeks)-1)]
	}
	repos, byEnv, refused := map[string]string{}, map[string]int{}, map[string]int{}
	policies := map[string]*policyUse{}
	usePolicy := func(hash, source string, t time.Time) {
		if hash == "" {
			return
		}
		if source == "" {
			source = "global"
		}
		k := hash + " " + source
		p := policies[k]
		if p == nil {
			p = &policyUse{Hash: hash, Source: source, First: t}
			policies[k] = p
		}
		p.Decisions++
		p.Last = t
	}
	var deployIDs []int64 // deploys of the period with an override, for their reviews
	err := w.period(ctx, "", func(r compliance.Record) error {
		f.Records++
		if r.Repo != "" {
			repos[strings.ToLower(r.Repo)] = r.Repo
		}
		switch r.Kind {
		case compliance.EvidenceDeploymentCreated:
			d, err := decode[deployView](r)
			if err != nil || !w.envOK(d.Environment) {
				return err
			}
			f.Deploys++
			byEnv[d.Environment]++
			wk := at(r.At)
			wk.Deploys++
			if d.Compliant {
				f.CompliantDeploys++
			}
			if d.Override != nil {
				f.Overridden++
				deployIDs = append(deployIDs, d.DeployID)
			}
			for _, c := range d.Report.Changes {
				f.Changes++
				wk.Changes++
				if c.Compliant {
					f.CompliantChanges++
					wk.Compliant++
				}
			}
			usePolicy(d.PolicyHash, d.PolicySource, r.At)
		case compliance.EvidenceDeployRequested:
			d, err := decode[deploygate.DeployRequestEvidence](r)
			if err != nil || !w.envOK(d.Environment) || !d.Emergency {
				return err
			}
			f.Emergencies++
			at(r.At).Emergencies++
		case compliance.EvidenceDeployRefused:
			d, err := decode[deploygate.DeployRefusedEvidence](r)
			if err != nil || !w.envOK(d.Environment) {
				return err
			}
			f.Refused++
			refused[refusalKind(d)]++
			at(r.At).Refused++
		case compliance.EvidenceDeployAttemptDenied:
			d, err := decode[deploygate.AttemptDeniedEvidence](r)
			if err != nil || !w.envOK(d.Environment) {
				return err
			}
			f.Denied++
		case compliance.EvidenceMergeVerdict:
			m, err := decode[verdictView](r)
			if err != nil {
				return err
			}
			f.Merges++
			if m.Compliant {
				f.CompliantMerges++
			} else {
				at(r.At).NonCompliantMerges++
			}
			usePolicy(m.PolicyHash, m.PolicySource, r.At)
		case compliance.EvidenceDirectPush:
			f.DirectPushes++
			at(r.At).DirectPushes++
		case compliance.EvidenceCheckRun:
			c, err := decode[verdictView](r)
			if err != nil {
				return err
			}
			f.Checks++
			usePolicy(c.PolicyHash, c.PolicySource, r.At)
		}
		return nil
	})
	if err = stopped(err); err != nil {
		return f, err
	}
	for _, r := range repos {
		f.Repos = append(f.Repos, r)
	}
	if w.q.Repo != "" && len(f.Repos) == 0 {
		f.Repos = []string{w.q.Repo}
	}
	sort.Strings(f.Repos)
	f.ByEnv = sortedCounts(byEnv)
	f.RefusedBy = sortedCounts(refused)
	for _, p := range policies {
		f.Policies = append(f.Policies, *p)
	}
	sort.Slice(f.Policies, func(i, j int) bool { return f.Policies[i].First.Before(f.Policies[j].First) })
	f.Retro = retroOf(deployIDs, retro, w.q.Generated)
	return f, nil
}

func sortedCounts(m map[string]int) []count {
	out := make([]count, 0, len(m))
	for k, n := range m {
		out = append(out, count{k, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N > out[j].N || out[i].N == out[j].N && out[i].Name < out[j].Name })
	return out
}

// retroByDeploy indexes retroactive reviews by deploy id and change name.
func retroByDeploy(reviews []emergency.RetroReview) map[string]emergency.RetroReview {
	m := make(map[string]emergency.RetroReview, len(reviews))
	for _, r := range reviews {
		m[r.Opened.Key()] = r
	}
	return m
}

// retroOf sums up the reviews opened by the given deploys.
func retroOf(deployIDs []int64, reviews map[string]emergency.RetroReview, now time.Time) retroFigures {
	var f retroFigures
	var days []float64
	for _, r := range reviews {
		if !slices.Contains(deployIDs, r.Opened.DeployID) {
			continue
		}
		f.Opened++
		if r.Closed == nil {
			f.Open++
			if !r.Opened.Due.IsZero() && now.After(r.Opened.Due) {
				f.Overdue++
			}
			continue
		}
		f.Closed++
		days = append(days, r.Closed.At.Sub(r.Opened.At).Hours()/24)
	}
	if len(days) > 0 {
		sort.Float64s(days)
		f.MedianDays = days[len(days)/2]
		if len(days)%2 == 0 {
			f.MedianDays = (days[len(days)/2-1] + days[len(days)/2]) / 2
		}
		f.MaxDays = days[len(days)-1]
	}
	return f
}

// link is one deploy to an environment, against the recorded deploy before it.
type link struct {
	Service, Env, Repo string
	DeployID           int64
	Seq                int64
	At                 time.Time
	Base, Head         string
	// Previous is the recorded deploy the base should be the head of (zero for the first one).
	Previous     int64
	PreviousHead string
	// Skipped names recorded deploys passed over because GitHub reported they failed.
	Skipped []int64
	// Changes names the deploy's changes ("#12", "direct push abc1234"); Compliant says whether
	// all were; Override is set for a deploy past violations.
	Changes   []string
	Compliant bool
	Override  bool
	Status    string // the deployment's latest state on GitHub, as recorded
}

// Gap says whether changes reached the environment between the previous deploy and this one
// outside sockembot: the base is not the head sockembot last deployed there.
func (l link) Gap() bool { return l.Previous != 0 && l.Base != l.PreviousHead }

// First says whether this is the first deploy sockembot recorded to the environment.
func (l link) First() bool { return l.Previous == 0 }

// chainWindow is how many deploys back a base is looked for when the latest ones failed.
const chainWindow = 16

// deployed is a recorded deploy, as the chain walk keeps it.
type deployed struct {
	id, ghID int64
	head     string
}

// failedStates are deployment states after which the deploy's head never ran in the environment,
// so GitHub's current deployment (the next deploy's base) is still the one before it.
var failedStates = map[string]bool{"failure": true, "error": true}

// deployChain walks every recorded deploy up to the period's end, environment by environment, and
// calls fn for each deploy in the period with its link to the one before it. recorded, when not
// nil, gets each repository's GitHub deployment ids made through sockembot (for --github).
func (w *reportWalk) deployChain(ctx context.Context, statuses map[int64]deploygate.DeploymentStatusEvidence, recorded map[string]map[int64]bool, fn func(link) error) error {
	last := map[string][]deployed{} // service/env → the latest deploys, newest last
	err := w.since(ctx, time.Time{}, w.q.To, compliance.EvidenceDeploymentCreated, func(r compliance.Record) error {
		d, err := decode[deployView](r)
		if err != nil {
			return err
		}
		if recorded != nil && d.GitHubDeploymentID != 0 {
			k := strings.ToLower(d.Repo)
			if recorded[k] == nil {
				recorded[k] = map[int64]bool{}
			}
			recorded[k][d.GitHubDeploymentID] = true
		}
		if !w.envOK(d.Environment) {
			return nil
		}
		key := d.Service + "\x00" + d.Environment
		prev := last[key]
		l := link{Service: d.Service, Env: d.Environment, Repo: d.Repo, DeployID: d.DeployID, Seq: r.Seq, At: r.At, Base: d.BaseSHA, Head: d.SHA}
		for i := len(prev) - 1; i >= 0; i-- {
			p := prev[i]
			l.Previous, l.PreviousHead = p.id, p.head
			if p.head == d.BaseSHA || !failedStates[statuses[p.ghID].State] {
				break
			}
			l.Skipped = append(l.Skipped, p.id)
		}
		if len(l.Skipped) > 0 && l.Base != l.PreviousHead {
			// Every deploy in the window failed and none is the base: name the latest.
			l.Previous, l.PreviousHead, l.Skipped = prev[len(prev)-1].id, prev[len(prev)-1].head, nil
		}
		last[key] = append(prev, deployed{id: d.DeployID, ghID: d.GitHubDeploymentID, head: d.SHA})
		if len(last[key]) > chainWindow {
			last[key] = last[key][1:]
		}
		if r.At.Before(w.q.From) {
			return nil
		}
		for _, c := range d.Report.Changes {
			l.Changes = append(l.Changes, c.Name())
		}
		l.Compliant, l.Override, l.Status = d.Compliant, d.Override != nil, statuses[d.GitHubDeploymentID].State
		return fn(l)
	})
	return stopped(err)
}

// chainFigures counts the links of the period.
type chainFigures struct {
	Deploys, Chained, Gaps, Firsts int
}

// Report writes the report of q to out and says what the command should say after it. A chain
// that does not check out is written into the report's header (and the outcome); it is not an
// error. An error means the report could not be made, and what was written is incomplete.
func Report(ctx context.Context, st ReportStore, q ReportQuery, out io.Writer) (ReportOutcome, error) {
	if err := q.Validate(); err != nil {
		return ReportOutcome{}, fmt.Errorf("report: %w", err)
	}
	if q.Generated.IsZero() {
		q.Generated = time.Now().UTC()
	}
	chain, err := checkChain(ctx, st)
	if err != nil {
		return ReportOutcome{}, fmt.Errorf("report: check the evidence chain: %w", err)
	}
	w := &reportWalk{st: st, q: q, upto: chain.HeadSeq}
	if chain.State == chainBroken {
		// The chain cannot say where it ends: read every record there is.
		w.upto = math.MaxInt64
	}
	reviews, err := emergency.RetroReviews(ctx, st)
	if err != nil {
		return ReportOutcome{}, fmt.Errorf("report: retroactive reviews: %w", err)
	}
	retro := retroByDeploy(reviews)
	statuses, err := latestStatuses(ctx, st, time.Unix(0, 0).UTC())
	if err != nil {
		return ReportOutcome{}, fmt.Errorf("report: deployment statuses: %w", err)
	}
	fig, err := w.count(ctx, retro)
	if err != nil {
		return ReportOutcome{}, fmt.Errorf("report: count the period: %w", err)
	}
	var cf chainFigures
	recorded := map[string]map[int64]bool{}
	err = w.deployChain(ctx, statuses, recorded, func(l link) error {
		cf.Deploys++
		switch {
		case l.First():
			cf.Firsts++
		case l.Gap():
			cf.Gaps++
		default:
			cf.Chained++
		}
		return nil
	})
	if err != nil {
		return ReportOutcome{}, fmt.Errorf("report: walk the deploys: %w", err)
	}
	var outside *outsideGitHub
	if q.GitHub != nil {
		if outside, err = w.compareGitHub(ctx, fig.Repos, recorded); err != nil {
			return ReportOutcome{}, fmt.Errorf("report: compare with GitHub: %w", err)
		}
	}
	picks := samplePicks(q.Seed, fig.Changes, q.Sample)
	sample, err := w.drawSample(ctx, picks, retro, statuses)
	if err != nil {
		return ReportOutcome{}, fmt.Errorf("report: draw the sample: %w", err)
	}
	outcome := ReportOutcome{Chain: chain, Seed: q.Seed, Population: fig.Changes, Sampled: len(sample), Gaps: cf.Gaps,
		Deploys: fig.Deploys, CompliantShare: fig.CompliantShare()}
	page := &reportPage{Q: q, Chain: chain, Fig: fig, ChainFig: cf, Outside: outside, Sample: sample, Upto: w.upto}
	if page.Charts, err = charts(fig.Weeks); err != nil {
		return outcome, fmt.Errorf("report: %w", err)
	}
	outcome.Exceptions, err = page.write(ctx, w, retro, statuses, out)
	return outcome, err
}

// WriteReportFile writes the report of q to path whole or not at all: beside it first, then
// renamed once complete, so a failure (or two writers at once) never leaves a file that looks
// whole.
func WriteReportFile(ctx context.Context, st ReportStore, q ReportQuery, path string) (ReportOutcome, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return ReportOutcome{}, fmt.Errorf("report: %w", err)
	}
	defer os.Remove(tmp.Name())
	res, err := Report(ctx, st, q, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return res, err
}

// outsideGitHub is what GitHub knows that sockembot did not do, per repository.
type outsideGitHub struct {
	Repos []outsideRepo
}

type outsideRepo struct {
	Repo        string
	Branch      string
	Deployments []compliance.Deployment // to the period's environments, not made through sockembot
	Uncovered   []compliance.Commit     // default-branch commits no recorded check covered
	Commits     int                     // default-branch commits in the period
	Listed      int                     // GitHub deployments in the period
}

// compareGitHub asks GitHub, per repository, which deployments in the period sockembot did not
// make and which default-branch commits no recorded check, merge verdict or direct-push record
// covers.
func (w *reportWalk) compareGitHub(ctx context.Context, repos []string, recorded map[string]map[int64]bool) (*outsideGitHub, error) {
	out := &outsideGitHub{}
	for _, repo := range repos {
		o := outsideRepo{Repo: repo}
		deps, err := w.q.GitHub.Deployments(ctx, repo, w.q.Env, w.q.From, w.q.To)
		if err != nil {
			return nil, err
		}
		o.Listed = len(deps)
		for _, d := range deps {
			if !recorded[strings.ToLower(repo)][d.ID] {
				o.Deployments = append(o.Deployments, d)
			}
		}
		if o.Branch, _, err = w.q.GitHub.DefaultBranch(ctx, repo); err != nil {
			return nil, err
		}
		commits, err := w.q.GitHub.BranchCommits(ctx, repo, o.Branch, w.q.From, w.q.To)
		if err != nil {
			return nil, err
		}
		o.Commits = len(commits)
		uncovered := make(map[string]bool, len(commits))
		for _, c := range commits {
			uncovered[c.SHA] = true
		}
		cover := func(shas ...string) {
			for _, s := range shas {
				delete(uncovered, s)
			}
		}
		coverReport := func(rep compliance.Report) {
			for _, c := range rep.Changes {
				cover(c.Commits...)
				cover(c.MergeSHA)
			}
		}
		// A commit of the period is checked in it or after it (the deploy that ships it).
		rw := *w
		rw.q.Repo = repo
		err = rw.since(ctx, w.q.From, time.Time{}, "", func(r compliance.Record) error {
			if len(uncovered) == 0 {
				return errStop
			}
			switch r.Kind {
			case compliance.EvidenceCheckRun:
				c, err := decode[check.CheckRunEvidence](r)
				if err != nil {
					return err
				}
				coverReport(c.Report)
				for _, ch := range c.Facts.Range.Changes {
					cover(ch.RangeCommits...)
				}
			case compliance.EvidenceMergeVerdict:
				m, err := decode[mergegate.MergeVerdictEvidence](r)
				if err != nil {
					return err
				}
				coverReport(m.Report)
				cover(m.MergeSHA)
			case compliance.EvidenceDirectPush:
				p, err := decode[mergegate.DirectPushEvidence](r)
				if err != nil {
					return err
				}
				cover(p.SHA)
			}
			return nil
		})
		if err = stopped(err); err != nil {
			return nil, err
		}
		for _, c := range commits {
			if uncovered[c.SHA] {
				o.Uncovered = append(o.Uncovered, c)
			}
		}
		out.Repos = append(out.Repos, o)
	}
	return out, nil
}
