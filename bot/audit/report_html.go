package audit

import (
	"bufio"
	"context"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"sockembot/bot/deploygate"
	"sockembot/bot/emergency"
	"sockembot/bot/mergegate"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// The report as HTML: one file, styles in a <style> element, charts as inline SVG, no script, no
// image, no font or anything else fetched, and no hyperlink out (URLs are printed as text: opening
// the file, or clicking in it, reaches nothing). Each section starts a new page when printed.
// Sections whose rows can be many (the gaps, the exceptions) are written row by row as the
// records are walked.

// reportPage is what the templates show; the streamed sections are written by write.
type reportPage struct {
	Q        ReportQuery
	Chain    ChainCheck
	Fig      figures
	ChainFig chainFigures
	Outside  *outsideGitHub
	Sample   []sampled
	Charts   reportCharts
	Upto     int64
}

type reportCharts struct {
	Deploys, Exceptions template.HTML
}

// exceptionRow is one exception: a deploy refused, an emergency deploy, a deploy past
// violations, a non-compliant merge, a direct push.
type exceptionRow struct {
	At      time.Time
	Kind    string
	Repo    string
	What    string
	Env     string
	Who     string
	Reason  string
	Details []string
	Seq     int64
}

// charts draws the period's two charts.
func charts(weeks []week) (reportCharts, error) {
	starts := make([]time.Time, len(weeks))
	deploys := make([]int, len(weeks))
	share := make([]float64, len(weeks))
	kinds := []string{"refused deploys", "emergency deploys", "non-compliant merges", "direct pushes"}
	counts := make([][]int, len(kinds))
	for k := range counts {
		counts[k] = make([]int, len(weeks))
	}
	for i, w := range weeks {
		starts[i], deploys[i] = w.Start, w.Deploys
		share[i] = math.NaN()
		if w.Changes > 0 {
			share[i] = float64(w.Compliant) * 100 / float64(w.Changes)
		}
		counts[0][i], counts[1][i], counts[2][i], counts[3][i] = w.Refused, w.Emergencies, w.NonCompliantMerges, w.DirectPushes
	}
	d, err := deploysChart(starts, deploys, share)
	if err != nil {
		return reportCharts{}, err
	}
	e, err := exceptionsChart(starts, kinds, counts)
	if err != nil {
		return reportCharts{}, err
	}
	// gonum/plot's own SVG, of numbers and the fixed names above: nothing a user wrote.
	return reportCharts{Deploys: template.HTML(d), Exceptions: template.HTML(e)}, nil
}

// write writes the page to out: the header, summary and charts, then each streamed section.
func (p *reportPage) write(ctx context.Context, w *reportWalk, retro map[string]emergency.RetroReview, statuses map[int64]deploygate.DeploymentStatusEvidence, out io.Writer) (exceptions int, err error) {
	bw := bufio.NewWriterSize(out, 64<<10)
	exec := func(name string, data any) error { return reportTemplates.ExecuteTemplate(bw, name, data) }
	if err := exec("top", p); err != nil {
		return 0, err
	}
	// Completeness: every gap and every first deploy, as the chain walk finds them.
	if err := exec("completeness-start", p); err != nil {
		return 0, err
	}
	rows := 0
	err = w.deployChain(ctx, statuses, nil, func(l link) error {
		if l.Gap() || l.First() {
			rows++
			return exec("link", l)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := exec("completeness-mid", map[string]any{"Rows": rows, "Page": p}); err != nil {
		return 0, err
	}
	// Then the population itself, deploy by deploy: what an auditor traces a change to.
	err = w.deployChain(ctx, statuses, nil, func(l link) error { return exec("deploy", l) })
	if err != nil {
		return 0, err
	}
	if err := exec("completeness-end", p); err != nil {
		return 0, err
	}
	if err := exec("sample", p); err != nil {
		return 0, err
	}
	if err := exec("exceptions-start", p); err != nil {
		return 0, err
	}
	rows = 0
	err = w.exceptions(ctx, retro, func(e exceptionRow) error {
		rows++
		return exec("exception", e)
	})
	if err != nil {
		return 0, err
	}
	if err := exec("end", map[string]any{"Rows": rows, "Page": p}); err != nil {
		return 0, err
	}
	return rows, bw.Flush()
}

// exceptions walks the period and calls fn for each exception, in chain order.
func (w *reportWalk) exceptions(ctx context.Context, retro map[string]emergency.RetroReview, fn func(exceptionRow) error) error {
	err := w.period(ctx, "", func(r compliance.Record) error {
		row := exceptionRow{At: r.At, Repo: r.Repo, Seq: r.Seq}
		switch r.Kind {
		case compliance.EvidenceDeployRefused:
			d, err := decode[deploygate.DeployRefusedEvidence](r)
			if err != nil || !w.envOK(d.Environment) {
				return err
			}
			row.Kind, row.Env, row.Who = "refused deploy", d.Environment, d.Requester
			row.What = fmt.Sprintf("deploy #%d of %s %s", d.DeployID, d.Service, shortSHA(d.HeadSHA))
			row.Reason = d.Reason
			row.Details = append(row.Details, d.Violations...)
			if d.Error != "" {
				row.Details = append(row.Details, "error: "+d.Error)
			}
		case compliance.EvidenceDeployRequested:
			d, err := decode[deploygate.DeployRequestEvidence](r)
			if err != nil || !w.envOK(d.Environment) || !d.Emergency {
				return err
			}
			row.Kind, row.Env, row.Who = "emergency deploy requested", d.Environment, d.Requester
			row.What = fmt.Sprintf("deploy #%d of %s %s", d.DeployID, d.Service, d.Ref)
			row.Reason = d.EmergencyReason
		case compliance.EvidenceDeploymentCreated:
			if v, err := decode[deployView](r); err != nil || !w.envOK(v.Environment) || v.Override == nil {
				return err
			}
			d, err := decode[deploygate.DeploymentEvidence](r)
			if err != nil {
				return err
			}
			row.Kind, row.Env, row.Who = "deployed past violations", d.Environment, d.Override.By
			row.What = fmt.Sprintf("deploy #%d of %s %s", d.DeployID, d.Service, shortSHA(d.SHA))
			row.Reason = d.Override.Reason
			for _, c := range d.Report.Changes {
				if c.Compliant {
					continue
				}
				line := c.Name() + ": " + violationText(c.Violations)
				if rv, ok := retro[emergency.RetroReviewEvidence{DeployID: d.DeployID, Change: c.Name()}.Key()]; ok {
					line += "; " + retroState(rv)
				}
				row.Details = append(row.Details, line)
			}
		case compliance.EvidenceMergeVerdict:
			if v, err := decode[verdictView](r); err != nil || v.Compliant {
				return err
			}
			m, err := decode[mergegate.MergeVerdictEvidence](r)
			if err != nil {
				return err
			}
			row.Kind, row.Who = "non-compliant merge", m.MergedBy
			row.What = fmt.Sprintf("%s#%d %s", m.Repo, m.Number, m.Title)
			for _, c := range m.Report.Changes {
				row.Details = append(row.Details, violationText(c.Violations))
			}
			row.Reason = "merged without meeting the policy"
		case compliance.EvidenceDirectPush:
			d, err := decode[mergegate.DirectPushEvidence](r)
			if err != nil {
				return err
			}
			row.Kind, row.Who = "direct push", d.Pusher
			row.What = fmt.Sprintf("%s %s to %s: %s", d.Repo, shortSHA(d.SHA), d.Ref, firstLine(d.Message))
			row.Reason = "pushed to the default branch without a pull request"
		default:
			return nil
		}
		return fn(row)
	})
	return stopped(err)
}

func violationText(vs []compliance.Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%s (%s)", v.Message, v.Code)
	}
	return strings.Join(parts, "; ")
}

// retroState says where a retroactive review stands.
func retroState(rv emergency.RetroReview) string {
	if rv.Closed != nil {
		return fmt.Sprintf("retroactive review closed by %s (%s) on %s, after %s",
			rv.Closed.By, rv.Closed.Via, rv.Closed.At.UTC().Format("2006-01-02 15:04 UTC"), days(rv.Closed.At.Sub(rv.Opened.At).Hours()/24))
	}
	return fmt.Sprintf("retroactive review OPEN, due %s", rv.Opened.Due.UTC().Format("2006-01-02"))
}

// days says how long something took, in the unit that reads best: minutes, hours or days.
func days(d float64) string {
	n, one, many := int(math.Round(d)), "day", "days"
	switch h := d * 24; {
	case h < 1:
		n, one, many = int(math.Round(h*60)), "minute", "minutes"
	case h < 24:
		n, one, many = int(math.Round(h)), "hour", "hours"
	}
	return fmt.Sprintf("%d %s", n, render.Plural(n, one, many))
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

var reportTemplates = template.Must(template.New("report").Funcs(template.FuncMap{
	"day":   func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"short": shortSHA,
	"lastDay": func(t time.Time) string {
		// The period ends at To, exclusive: the last day in it is the day before a midnight.
		return t.Add(-time.Nanosecond).UTC().Format("2006-01-02")
	},
	"pct":       percent,
	"days":      days,
	"minus":     func(a, b int) int { return a - b },
	"firstLine": firstLine,
	"join":      strings.Join,
	"retro":     retroState,
	"violations": func(vs []compliance.Violation) string {
		return violationText(vs)
	},
	"chainClass": func(c ChainCheck) string {
		if c.Intact() {
			return "ok"
		}
		return "bad"
	},
}).Parse(reportHTML))

const reportHTML = `
{{define "top"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Change management report {{day .Q.From}} – {{lastDay .Q.To}}</title>
<style>
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #111; background: #fff; margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; border-bottom: 2px solid #111; padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.proves { background: #f2f2f2; border-left: 4px solid #555; padding: 8px 12px; margin: 8px 0 14px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #e8e8e8; font-weight: 600; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 12px; overflow-wrap: anywhere; }
.chain { font-weight: 700; padding: 10px 12px; border: 2px solid #111; margin: 12px 0; font-family: ui-monospace, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.chain.bad { border-width: 4px; border-style: double; background: #eee; }
.chain.bad::before { content: "⚠ "; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; margin: 10px 0 16px; }
.figure { border: 1px solid #999; padding: 8px 10px; break-inside: avoid; }
.figure .v { font-size: 24px; font-weight: 700; font-variant-numeric: tabular-nums; }
.figure .k { color: #333; }
.figure .sub { color: #444; font-size: 12px; }
.chart { margin: 10px 0 20px; break-inside: avoid; }
.chart svg { display: block; width: 100%; height: auto; max-width: 1000px; }
.card { border: 1px solid #888; padding: 8px 12px; margin: 12px 0; break-inside: avoid; }
.card h3 { margin-top: 4px; }
.card table { margin: 4px 0; }
.card th { width: 190px; }
.muted { color: #444; }
.verdict-bad { font-weight: 700; }
ul.flat { margin: 0; padding-left: 18px; }
footer { margin-top: 36px; color: #333; font-size: 12px; }
section + section { page-break-before: always; break-before: page; }
@page { size: A4; margin: 14mm; }
@media print { body { max-width: none; padding: 0; font-size: 11px; } h2 { margin-top: 0; } a { color: inherit; text-decoration: none; } }
</style>
</head>
<body>
<section id="header">
<h1>Change management report</h1>
<p class="muted">Evidence of the SOC 2 change-management control, read from sockembot's evidence store.</p>
<table>
<tr><th>Period</th><td id="period">{{day .Q.From}} to {{lastDay .Q.To}} (UTC, both days included)</td></tr>
<tr><th>Repositories</th><td id="repos">{{if .Fig.Repos}}{{join .Fig.Repos ", "}}{{else}}none with evidence in the period{{end}}{{if .Q.Repo}} (only {{.Q.Repo}}){{end}}</td></tr>
<tr><th>Environments</th><td>{{if .Q.Env}}{{.Q.Env}} only{{else}}all{{range $i, $e := .Fig.ByEnv}}{{if eq $i 0}}: {{else}}, {{end}}{{$e.Name}}{{end}}{{end}}</td></tr>
<tr><th>Generated</th><td id="generated">{{when .Q.Generated}}{{if .Q.Version}} by {{.Q.Version}}{{end}}</td></tr>
<tr><th>Evidence read</th><td>{{.Fig.Records}} records of the period{{if .Chain.HeadSeq}}, the chain up to record {{.Chain.HeadSeq}}{{end}}</td></tr>
<tr><th>Policies in force</th><td>{{if .Fig.Policies}}<table><thead><tr><th>policy hash (SHA-256)</th><th>source</th><th class="n">verdicts recorded</th><th>first used</th><th>last used</th></tr></thead>
{{range .Fig.Policies}}<tr><td><code>{{.Hash}}</code></td><td>{{if .Source}}{{.Source}}{{else}}global{{end}}</td><td class="n">{{.Decisions}}</td><td>{{when .First}}</td><td>{{when .Last}}</td></tr>
{{end}}</table>{{else}}no decision in the period{{end}}</td></tr>
<tr><th>Re-draw</th><td><code>{{.Q.Command}}</code></td></tr>
</table>
<div class="chain {{chainClass .Chain}}" id="chain">{{.Chain.Line}}</div>
{{if .Chain.Intact}}<p class="proves">The chain line proves the evidence below was not edited, inserted, deleted or reordered since sockembot wrote it: every record's MAC was checked with the evidence key when this report was made. Keep the head: a later <code>sockembot audit verify --anchor {{.Chain.HeadSeq}}:{{.Chain.HeadHash}}</code> proves nothing up to it changed since.</p>
{{else}}<p class="proves"><strong>The evidence chain did not check out, or could not be checked: nothing below is proven untouched. Treat every figure as unverified</strong> until <code>sockembot audit verify</code>, run with the evidence key, passes.</p>
{{end}}
</section>

<section id="summary">
<h2>Summary</h2>
<p class="proves">What share of the period's changes followed the policy, and how often it was set aside. Counts come from the frozen verdicts recorded at each gate, never from a re-evaluation.</p>
<div class="figures">
<div class="figure"><div class="v" id="fig-deploys">{{.Fig.Deploys}}</div><div class="k">deploys</div><div class="sub">{{range $i, $e := .Fig.ByEnv}}{{if $i}}, {{end}}{{$e.Name}} {{$e.N}}{{end}}</div></div>
<div class="figure"><div class="v" id="fig-changes">{{.Fig.Changes}}</div><div class="k">changes deployed</div><div class="sub">{{.Fig.CompliantChanges}} compliant</div></div>
<div class="figure"><div class="v" id="fig-compliant-share">{{.Fig.CompliantShare}}</div><div class="k">compliant share of changes deployed</div><div class="sub">{{.Fig.CompliantDeploys}} of {{.Fig.Deploys}} deploys wholly compliant</div></div>
<div class="figure"><div class="v" id="fig-refused">{{.Fig.Refused}}</div><div class="k">deploys refused</div><div class="sub">{{range $i, $e := .Fig.RefusedBy}}{{if $i}}, {{end}}{{$e.Name}} {{$e.N}}{{end}}</div></div>
<div class="figure"><div class="v" id="fig-emergencies">{{.Fig.Emergencies}}</div><div class="k">emergency deploy requests</div><div class="sub">{{.Fig.Overridden}} deployed past violations</div></div>
<div class="figure"><div class="v" id="fig-retro">{{.Fig.Retro.Closed}} / {{.Fig.Retro.Opened}}</div><div class="k">retroactive reviews closed</div><div class="sub">{{.Fig.Retro.Open}} open{{if .Fig.Retro.Overdue}} ({{.Fig.Retro.Overdue}} overdue){{end}}{{if .Fig.Retro.Closed}}; median {{days .Fig.Retro.MedianDays}} to close, longest {{days .Fig.Retro.MaxDays}}{{end}}</div></div>
<div class="figure"><div class="v" id="fig-merges">{{.Fig.Merges}}</div><div class="k">merges</div><div class="sub">{{.Fig.CompliantMerges}} compliant, {{minus .Fig.Merges .Fig.CompliantMerges}} not</div></div>
<div class="figure"><div class="v" id="fig-direct-pushes">{{.Fig.DirectPushes}}</div><div class="k">direct pushes</div><div class="sub">commits on a default branch with no pull request</div></div>
<div class="figure"><div class="v" id="fig-denied">{{.Fig.Denied}}</div><div class="k">attempts denied</div><div class="sub">by someone without the role, or on a locked environment</div></div>
<div class="figure"><div class="v" id="fig-checks">{{.Fig.Checks}}</div><div class="k">checks recorded</div><div class="sub">pull requests, deploys, re-checks</div></div>
</div>
<h3>Charts</h3>
<figure class="chart" id="chart-deploys">{{.Charts.Deploys}}<figcaption class="muted">Deploys per week, and the share of the changes deployed that week that were compliant.</figcaption></figure>
<figure class="chart" id="chart-exceptions">{{.Charts.Exceptions}}<figcaption class="muted">Exceptions per week by kind; each is listed under Exceptions.</figcaption></figure>
</section>
{{end}}

{{define "completeness-start"}}
<section id="completeness">
<h2>Population completeness</h2>
<p class="proves">Every change that reached an environment is in the population sampled below only if every deploy went through sockembot. Each deploy records what was running before it (its base, which GitHub reported) and what it shipped (its head); consecutive deploys to an environment must chain, the base of one being the head of the recorded deploy before it. A break means something reached the environment outside sockembot in between. Deploys GitHub reported as failed are passed over, as they never ran.</p>
<p id="chain-figures">{{.ChainFig.Deploys}} deploys in the period: <strong>{{.ChainFig.Chained}} chain</strong> to the deploy before them, <strong id="fig-gaps">{{.ChainFig.Gaps}}</strong> do not{{if .ChainFig.Firsts}}, {{.ChainFig.Firsts}} {{if eq .ChainFig.Firsts 1}}is the first{{else}}are the first{{end}} sockembot recorded to {{if eq .ChainFig.Firsts 1}}its{{else}}their{{end}} environment{{end}}.</p>
<table id="gaps">
<thead><tr><th>environment</th><th>deploy</th><th>recorded</th><th>finding</th><th>previous head (sockembot)</th><th>base found running</th></tr></thead>
<tbody>
{{end}}

{{define "link"}}<tr{{if .Gap}} class="gap"{{end}}><td>{{.Service}} → {{.Env}}</td><td>#{{.DeployID}} (record {{.Seq}})</td><td>{{when .At}}</td>
<td>{{if .Gap}}<strong>changes that reached {{.Env}} outside sockembot</strong>: between deploy #{{.Previous}}'s head and this deploy's base{{else}}first deploy sockembot recorded to {{.Env}}{{if .Base}}: what ran before it ({{short .Base}}) was deployed before sockembot's records begin{{end}}{{end}}{{if .Skipped}} (passed over failed deploys {{range $i, $s := .Skipped}}{{if $i}}, {{end}}#{{$s}}{{end}}){{end}}</td>
<td><code>{{if .PreviousHead}}{{.PreviousHead}}{{else}}–{{end}}</code></td><td><code>{{if .Base}}{{.Base}}{{else}}nothing deployed{{end}}</code></td></tr>
{{end}}

{{define "completeness-mid"}}{{if not .Rows}}<tr><td colspan="6">No gap: every deploy of the period chains to the deploy before it.</td></tr>{{end}}
</tbody></table>
<h3>Every deploy of the period</h3>
<p class="muted">The population, deploy by deploy, in the order recorded: each change here is one the sample below may draw.</p>
<table id="deploys">
<thead><tr><th>recorded</th><th>environment</th><th>deploy</th><th>base → head</th><th>chain</th><th>changes</th><th>verdict</th></tr></thead>
<tbody>
{{end}}

{{define "deploy"}}<tr><td>{{when .At}}</td><td>{{.Env}}</td><td>{{.Service}} #{{.DeployID}}{{if .Status}} ({{.Status}}){{end}}</td><td><code>{{if .Base}}{{short .Base}}{{else}}–{{end}} → {{short .Head}}</code></td><td>{{if .Gap}}<strong>GAP</strong>{{else if .First}}first{{else}}chains to #{{.Previous}}{{end}}</td><td>{{join .Changes ", "}}</td><td>{{if .Compliant}}compliant{{else if .Override}}<strong>past violations</strong>{{else}}<strong>not compliant</strong>{{end}}</td></tr>
{{end}}

{{define "completeness-end"}}</tbody></table>
{{with .Outside}}<h3>Compared with GitHub</h3>
<p class="proves">What GitHub itself knows: deployments sockembot did not make (matched by deployment id against the deployment records, never by payload, which anyone can forge), and commits on each default branch in the period that no recorded check, merge verdict or direct-push record covers.</p>
{{range .Repos}}<h3>{{.Repo}}</h3>
<p>{{.Listed}} GitHub deployments in the period, <strong class="fig-outside-deployments">{{len .Deployments}}</strong> not made through sockembot; {{.Commits}} commits on {{.Branch}}, <strong class="fig-uncovered">{{len .Uncovered}}</strong> not covered by any recorded check.</p>
{{if .Deployments}}<table><thead><tr><th>GitHub deployment</th><th>environment</th><th>created</th><th>by</th><th>commit</th><th>description</th></tr></thead>
{{range .Deployments}}<tr><td>{{.ID}}</td><td>{{.Environment}}</td><td>{{when .CreatedAt}}</td><td>{{.Creator}}</td><td><code>{{.SHA}}</code></td><td>{{.Description}}</td></tr>
{{end}}</table>{{end}}
{{if .Uncovered}}<table><thead><tr><th>commit on {{.Branch}}</th><th>authored</th><th>author</th><th>message</th></tr></thead>
{{range .Uncovered}}<tr><td><code>{{.SHA}}</code></td><td>{{when .AuthoredAt}}</td><td>{{.Author}}</td><td>{{firstLine .Message}}</td></tr>
{{end}}</table>{{end}}
{{end}}{{else}}<p class="muted">Not compared with GitHub: run with <code>--github</code> (and GitHub credentials, as for <code>sockembot run</code>) to also list GitHub deployments sockembot did not make and default-branch commits no recorded check covered.</p>{{end}}
</section>
{{end}}

{{define "sample"}}
<section id="sample">
<h2>Sample</h2>
<p class="proves">Changes drawn uniformly at random, without replacement, from the <span id="fig-population">{{.Fig.Changes}}</span> changes deployed in the period (every change of every deployment record, in chain order). The draw depends only on the seed: the same command with the same seed on the same store draws the same changes. Each card holds what the deploy was judged on, frozen when it went out, and the numbers and hashes of the evidence records that back it.</p>
<p id="seed-line"><strong>Seed: <span id="seed">{{.Q.Seed}}</span></strong>{{if not .Q.SeedGiven}} (drawn at random for this report){{end}}; {{len .Sample}} of {{.Fig.Changes}} changes{{if lt .Q.Sample .Fig.Changes}} asked for {{.Q.Sample}}{{else}} (every change: the population is no larger than the sample asked for){{end}}. Algorithm: PCG-DXSM seeded (seed, 0x736f636b656d626f), Floyd's sampling, positions counted from 1.</p>
{{range .Sample}}<div class="card sample" id="sample-{{.Position}}">
<h3>{{if .Change.Number}}{{.Deploy.Repo}}#{{.Change.Number}}: {{.Change.Title}}{{else}}{{.Change.Name}} in {{.Deploy.Repo}}{{end}}</h3>
<table>
<tr><th>population position</th><td>{{.Position}}</td></tr>
{{if .Change.URL}}<tr><th>pull request</th><td><span class="mono">{{.Change.URL}}</span></td></tr>{{end}}
<tr><th>tickets (status at deploy)</th><td>{{if .Change.Tickets}}<ul class="flat">{{range .Change.Tickets}}<li>{{.Key}}: {{if .Found}}{{.Status}}{{else}}not found in Jira{{end}}{{if .Summary}} — {{.Summary}}{{end}}{{if .URL}} <span class="mono muted">{{.URL}}</span>{{end}}</li>{{end}}</ul>{{else}}none{{end}}</td></tr>
<tr><th>approved by</th><td>{{if .Approved}}<ul class="flat">{{range .Approved}}<li>{{.User}} at {{when .At}}{{if .Commit}} on <code>{{short .Commit}}</code>{{if .Final}} (the final commit){{else}} (not the final commit){{end}}{{end}}</li>{{end}}</ul>{{else}}no counted approval{{end}}</td></tr>
<tr><th>author</th><td>{{.Change.Author}}</td></tr>
<tr><th>merged by</th><td>{{if .Change.MergedBy}}{{.Change.MergedBy}}{{else}}–{{end}}{{if .Change.MergeSHA}} as <code>{{short .Change.MergeSHA}}</code>{{end}}</td></tr>
<tr><th>deployed</th><td>{{when .Record.At}} to <strong>{{.Deploy.Environment}}</strong> ({{.Deploy.Service}} deploy #{{.Deploy.DeployID}}, <code>{{short .Deploy.SHA}}</code>{{if .Status}}, GitHub: {{.Status}}{{end}})</td></tr>
<tr><th>requested / deployed by</th><td>{{.Deploy.Requester}} / {{.Deploy.Deployer}}</td></tr>
<tr><th>verdict</th><td>{{if .Change.Compliant}}compliant{{else}}<span class="verdict-bad">NOT compliant</span>: {{violations .Change.Violations}}{{end}}</td></tr>
{{with .Deploy.Override}}<tr><th>override</th><td>by {{.By}} at {{when .At}}: {{.Reason}}</td></tr>{{end}}
{{with .Retro}}<tr><th>retroactive review</th><td>{{retro .}}</td></tr>{{end}}
{{if .Deploy.ThreadURL}}<tr><th>Slack thread</th><td><span class="mono">{{.Deploy.ThreadURL}}</span></td></tr>{{end}}
<tr><th>evidence records</th><td><ul class="flat"><li>#{{.Record.Seq}} {{.Record.Kind}} <code>{{.Record.Hash}}</code></li>{{range .Evidence}}<li>#{{.Seq}} {{.Kind}} <code>{{.Hash}}</code></li>{{end}}</ul>{{range .Problems}}<p class="verdict-bad">{{.}}</p>{{end}}</td></tr>
</table>
</div>
{{else}}{{if .Fig.Changes}}<p>No sample was asked for (<code>--sample 0</code>).</p>{{else}}<p>No change was deployed in the period{{if .Q.Env}} to {{.Q.Env}}{{end}}: there is nothing to sample.</p>{{end}}
{{end}}
</section>
{{end}}

{{define "exceptions-start"}}
<section id="exceptions">
<h2>Exceptions</h2>
<p class="proves">Every deploy refused, every emergency deploy and every deploy that went out past violations (with its retroactive review), every non-compliant merge and every direct push of the period, with the reason recorded.</p>
<table id="exception-list">
<thead><tr><th>recorded</th><th>kind</th><th>what</th><th>environment</th><th>who</th><th>reason</th><th class="n">record</th></tr></thead>
<tbody>
{{end}}

{{define "exception"}}<tr><td>{{when .At}}</td><td>{{.Kind}}</td><td>{{.What}}</td><td>{{if .Env}}{{.Env}}{{else}}–{{end}}</td><td>{{.Who}}</td><td>{{.Reason}}{{if .Details}}<ul class="flat">{{range .Details}}<li>{{.}}</li>{{end}}</ul>{{end}}</td><td class="n">{{.Seq}}</td></tr>
{{end}}

{{define "end"}}{{if not .Rows}}<tr><td colspan="7">No exception in the period.</td></tr>{{end}}
</tbody></table>
<footer>
<p>Made by <code>sockembot audit report</code> from the evidence store alone{{if .Page.Outside}} and GitHub's API{{end}}. This file loads nothing and links nowhere: URLs are printed as text. To check the chain yourself: <code>sockembot audit verify</code> with the evidence key; to list every change deployed: <code>sockembot audit export --from {{day .Page.Q.From}} --to {{lastDay .Page.Q.To}}</code>.</p>
<p id="chain-footer">{{.Page.Chain.Line}}</p>
</footer>
</section>
</body>
</html>
{{end}}
`
