// Command sockembot makes SOC 2 change management automatic: a merge gate, a deploy gate in
// Slack, and tamper-evident evidence. main reads the environment and the config and starts the
// chosen subcommand; everything else lives in bot/, compliance/ and integrations/.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sockembot/bot"
	"sockembot/bot/audit"
	"sockembot/bot/check"
	"sockembot/bot/demo"
	"sockembot/bot/render"
	"sockembot/compliance"
	"sockembot/integrations/github"
	"sockembot/integrations/jira"
	slackapi "sockembot/integrations/slack"
	"sockembot/integrations/store"

	"github.com/sirupsen/logrus"
)

// Exit codes are a contract with CI pipelines.
const (
	exitCompliant    = 0
	exitNotCompliant = 1
	exitCouldNotRun  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitCouldNotRun
	}
	cmd, rest := args[0], args[1:]
	if name, ok := strings.CutPrefix(cmd, "-"); ok {
		// sockembot's own flags, in either of the forms Go's flag package takes (-x, --x).
		name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
		switch name {
		case "h", "help":
			cmd = "help"
		case "version":
			cmd = "version"
		default:
			return topUsageError(stderr, "flag provided but not defined: -%s", name)
		}
	}
	switch cmd {
	case "check":
		return cmdCheck(ctx, rest, stdout, stderr, getenv)
	case "audit":
		return cmdAudit(ctx, rest, stdout, stderr, getenv)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "run":
		return cmdRun(ctx, rest, stdout, stderr, getenv)
	case "version":
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		if code, done := parseFlags(fs, versionHelp, rest, stdout, stderr); done {
			return code
		}
		fmt.Fprint(stdout, versionText())
		return exitCompliant
	case "help":
		if len(rest) > 0 {
			// sockembot help check (or help audit export): that command's help.
			if !slices.Contains(commands, rest[0]) {
				return topUsageError(stderr, "unknown command %q (the commands are %s)", rest[0], strings.Join(commands, ", "))
			}
			return run(ctx, append(slices.Clone(rest), "--help"), stdout, stderr, getenv)
		}
		fmt.Fprint(stdout, usage)
		return exitCompliant
	default:
		return topUsageError(stderr, "unknown command %q (the commands are %s)", cmd, strings.Join(commands, ", "))
	}
}

// commands are sockembot's commands, as help and usage errors name them.
var commands = []string{"check", "run", "demo", "audit", "version"}

// topUsageError is a usage error before any command was chosen: said with a pointer to --help,
// not the whole usage.
func topUsageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "sockembot: %s\nRun 'sockembot --help' for usage.\n", fmt.Sprintf(format, args...))
	return exitCouldNotRun
}

// validRepo says whether s is OWNER/NAME.
func validRepo(s string) bool {
	owner, name, ok := strings.Cut(s, "/")
	return ok && owner != "" && name != "" && !strings.Contains(name, "/") && !strings.ContainsAny(s, " \t\n")
}

// failure prints a failure report and returns exit code 2. consequence says what the failure
// means for this command ("" for a check's: nothing is treated as compliant).
func failure(stderr io.Writer, doing, consequence string, err error) int {
	fmt.Fprint(stderr, render.Failure{Doing: doing, Err: err, Consequence: consequence}.Text())
	return exitCouldNotRun
}

// What a failure means, command by command.
const (
	verifyFailed = "The evidence chain was NOT verified: treat it as unverified, not as intact."
	exportFailed = "The export is missing or incomplete: do not use this output."
	reportFailed = "The report was not written (or, on stdout, is incomplete): do not use it."
	runFailed    = "sockembot has stopped: nothing is gated (no deploys, no merge statuses) until it runs again."
	runNoStart   = "sockembot did not start: nothing is gated (no deploys, no merge statuses) until it runs."
	checkSetup   = "The check did not run, so nothing is treated as compliant. Set what the error names; 'sockembot check --help' lists the environment it reads."
	demoFailed   = "The demo did not finish; what it printed shows how far it got."
)

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	repo := fs.String("repo", "", "repository `OWNER/NAME` (required)")
	base := fs.String("base", "", "base `REF`: what is deployed now, a branch, tag or SHA (required)")
	head := fs.String("head", "", "head `REF`: what is to be deployed (required)")
	policyFile := fs.String("policy", "", "policy YAML `FILE` (default: the built-in policy)")
	format := fs.String("format", "text", "output `format`: text or json")
	if code, done := parseFlags(fs, checkHelp, args, stdout, stderr); done {
		return code
	}
	switch {
	case *repo == "":
		return usageError(stderr, "check", "--repo is required (OWNER/NAME)")
	case !validRepo(*repo):
		return usageError(stderr, "check", "--repo must be OWNER/NAME (got %q)", *repo)
	case *base == "":
		return usageError(stderr, "check", "--base is required (a branch, tag or commit SHA)")
	case *head == "":
		return usageError(stderr, "check", "--head is required (a branch, tag or commit SHA)")
	case *format != "text" && *format != "json":
		return usageError(stderr, "check", "--format must be text or json (got %q)", *format)
	}
	policy := compliance.DefaultPolicy()
	if *policyFile != "" {
		data, err := os.ReadFile(*policyFile)
		if err != nil {
			return failure(stderr, "read the policy file", "", err)
		}
		if policy, err = check.ParsePolicy(data); err != nil {
			return failure(stderr, "read the policy file "+*policyFile, "", err)
		}
	}
	checker, closeFn, err := newChecker(ctx, getenv, getenv("DATABASE_URL") != "")
	if err != nil {
		return failure(stderr, "set up the check", checkSetup, err)
	}
	defer closeFn()
	result, err := checker.Check(ctx, check.Request{Repo: *repo, Base: *base, Head: *head, Policy: policy, Trigger: "cli"})
	if err != nil {
		return failure(stderr, fmt.Sprintf("check %s %s..%s", *repo, *base, *head), "", err)
	}
	if result.PolicySource != check.GlobalPolicySource && *policyFile != "" {
		// The repository's own policy wins (see README, "Per-repository policy"): say so, since
		// the caller asked for another.
		fmt.Fprintf(stderr, "note: the repository's own policy %s overrides --policy %s\n", result.PolicySource, *policyFile)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		// The contract's fields, plus which policy decided (additions only: parsers keep working).
		out := struct {
			compliance.Report
			PolicySource string `json:"policy_source"`
			PolicyHash   string `json:"policy_hash"`
		}{result.Report, result.PolicySource, result.PolicyHash}
		if err := enc.Encode(out); err != nil {
			return failure(stderr, "write the report", "", err)
		}
	} else {
		fmt.Fprint(stdout, render.ReportText(result.Report))
		fmt.Fprintf(stdout, "\npolicy: %s (%s)\n", result.PolicySource, result.PolicyHash)
	}
	if !result.Report.Compliant {
		return exitNotCompliant
	}
	return exitCompliant
}

func newChecker(ctx context.Context, getenv func(string) string, withStore bool) (*check.Checker, func(), error) {
	gh, err := newGitHub(getenv)
	if err != nil {
		return nil, nil, err
	}
	jc, err := newJira(getenv)
	if err != nil {
		return nil, nil, err
	}
	c := &check.Checker{GitHub: gh, Jira: jc, Files: gh}
	closeFn := func() {}
	if withStore {
		key, err := evidenceKey(getenv, true)
		if err != nil {
			return nil, nil, err
		}
		st, err := store.Open(ctx, getenv("DATABASE_URL"), store.WithKey(key))
		if err != nil {
			return nil, nil, fmt.Errorf("open the evidence store: %w", err)
		}
		c.Evidence, c.Facts = st, st
		closeFn = func() { st.Close() }
	}
	return c, closeFn, nil
}

// evidenceKey reads SOCKEMBOT_EVIDENCE_KEY, the key of the evidence chain; nil when it is not
// set and not required. Errors name the variable, never its value.
func evidenceKey(getenv func(string) string, required bool) ([]byte, error) {
	text := getenv("SOCKEMBOT_EVIDENCE_KEY")
	if strings.TrimSpace(text) == "" {
		if required {
			// Evidence appended without it could be rewritten by anyone who can write the database.
			return nil, errors.New("SOCKEMBOT_EVIDENCE_KEY is not set: the evidence chain is keyed with it (HMAC-SHA256). Generate one with `openssl rand -hex 32` and keep it outside the database")
		}
		return nil, nil
	}
	key, err := store.ParseKey(text)
	if err != nil {
		return nil, fmt.Errorf("SOCKEMBOT_EVIDENCE_KEY %w", err)
	}
	return key, nil
}

func newGitHub(getenv func(string) string) (*github.Client, error) {
	gh, _, err := newGitHubAuth(getenv)
	return gh, err
}

// newGitHubAuth builds the GitHub client as the environment says: a GitHub App (GITHUB_APP_ID,
// its private key, optionally GITHUB_APP_INSTALLATION_ID) or a token (GITHUB_TOKEN), never both.
// appID is 0 in token mode. Errors name variables, never their values.
func newGitHubAuth(getenv func(string) string) (gh *github.Client, appID int64, err error) {
	opts := github.Options{BaseURL: getenv("GITHUB_API_URL"), Token: getenv("GITHUB_TOKEN")}
	app, err := githubApp(getenv)
	if err != nil {
		return nil, 0, err
	}
	if app != nil {
		if opts.Token != "" {
			// Which identity writes the verdicts must never be a guess.
			return nil, 0, errors.New("GITHUB_TOKEN and GITHUB_APP_ID are both set: run as the GitHub App (unset GITHUB_TOKEN) or with the token (unset GITHUB_APP_ID and the App's key), not both")
		}
		opts.App, appID = app, app.ID
	}
	gh, err = github.New(opts)
	return gh, appID, err
}

// githubApp reads the GitHub App's settings; nil when none is set.
func githubApp(getenv func(string) string) (*github.AppAuth, error) {
	idText, keyFile, keyText, instText := strings.TrimSpace(getenv("GITHUB_APP_ID")), getenv("GITHUB_APP_PRIVATE_KEY_FILE"), getenv("GITHUB_APP_PRIVATE_KEY"), strings.TrimSpace(getenv("GITHUB_APP_INSTALLATION_ID"))
	if idText == "" {
		if keyFile != "" || keyText != "" || instText != "" {
			return nil, errors.New("GITHUB_APP_ID is not set, but the App's key or installation is: set GITHUB_APP_ID to the App's id (its settings page, 'App ID')")
		}
		return nil, nil
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return nil, fmt.Errorf("GITHUB_APP_ID must be the App's numeric id (got %q)", idText)
	}
	app := &github.AppAuth{ID: id}
	switch {
	case keyFile != "" && keyText != "":
		return nil, errors.New("GITHUB_APP_PRIVATE_KEY_FILE and GITHUB_APP_PRIVATE_KEY are both set: set one")
	case keyFile != "":
		if app.PrivateKey, err = os.ReadFile(keyFile); err != nil {
			return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY_FILE: %w", err)
		}
	case strings.TrimSpace(keyText) != "":
		// Platforms with only single-line variables get "\n" for each line break.
		app.PrivateKey = []byte(strings.ReplaceAll(keyText, `\n`, "\n"))
	default:
		return nil, errors.New("GITHUB_APP_ID is set but the App's private key is not: set GITHUB_APP_PRIVATE_KEY_FILE to the .pem GitHub issued (or GITHUB_APP_PRIVATE_KEY to its text)")
	}
	if instText != "" {
		if app.InstallationID, err = strconv.ParseInt(instText, 10, 64); err != nil || app.InstallationID <= 0 {
			return nil, fmt.Errorf("GITHUB_APP_INSTALLATION_ID must be a numeric installation id (got %q)", instText)
		}
	}
	return app, nil
}

func newJira(getenv func(string) string) (*jira.Client, error) {
	if getenv("JIRA_URL") == "" {
		// Without Jira no ticket can be verified; refusing beats a check that passes blind.
		return nil, errors.New("JIRA_URL is not set: set it to the Jira site (e.g. https://acme.atlassian.net/)")
	}
	if getenv("JIRA_TOKEN") == "" {
		return nil, errors.New("JIRA_TOKEN is not set: set it to a Jira Cloud API token (with JIRA_USER, the account's e-mail) or a Data Center personal access token")
	}
	return jira.New(jira.Options{BaseURL: getenv("JIRA_URL"), User: getenv("JIRA_USER"), Token: getenv("JIRA_TOKEN")})
}

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		return usageError(stderr, "audit", "say export, report or verify")
	}
	if isHelp(args) || args[0] == "-help" {
		help := auditHelp
		if help.exit == "" {
			help.exit = "0 exported / chain intact, 1 tampered or empty (verify), 2 could not export or verify."
		}
		fmt.Fprint(stdout, help.text(nil))
		return exitCompliant
	}
	if name, ok := strings.CutPrefix(args[0], "-"); ok {
		name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
		return usageError(stderr, "audit", "flag provided but not defined: -%s (flags go after export, report or verify)", name)
	}
	switch args[0] {
	case "verify":
		fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
		anchor := fs.String("anchor", "", "`SEQ:MAC` from a deploy's Slack thread, the daily summary or an earlier verify's head line, kept outside the database")
		allowEmpty := fs.Bool("allow-empty", false, "accept an empty store (by default an empty store fails: it may be the wrong database, or every record removed)")
		if code, done := parseFlags(fs, verifyHelp, args[1:], stdout, stderr); done {
			return code
		}
		var anchorSeq int64
		var anchorHash string
		if *anchor != "" {
			seqText, hash, ok := strings.Cut(*anchor, ":")
			seq, err := strconv.ParseInt(seqText, 10, 64)
			hash = strings.ToLower(hash)
			if _, hexErr := hex.DecodeString(hash); !ok || err != nil || seq < 1 || len(hash) != 64 || hexErr != nil {
				return usageError(stderr, "audit verify", "--anchor is SEQ:MAC, as a deploy thread or the head line gives it (record 42, MAC 3f… → 42:3f…) (got %q)", *anchor)
			}
			anchorSeq, anchorHash = seq, hash
		}
		st, doing, err := openAuditStore(ctx, getenv)
		if err != nil {
			return failure(stderr, doing, verifyFailed, err)
		}
		defer st.Close()
		res, err := st.Verify(ctx)
		if err != nil {
			return failure(stderr, "verify the evidence chain", verifyFailed, err)
		}
		if !res.OK {
			fmt.Fprintf(stdout, "TAMPERED: evidence record %d: %s (%d records checked)\n", res.FirstBad, res.Problem, res.Checked)
			return exitNotCompliant
		}
		if anchorSeq != 0 {
			rec, found, err := st.RecordAt(ctx, anchorSeq)
			if err != nil {
				return failure(stderr, "read the anchored record", verifyFailed, err)
			}
			if !found {
				// The rest of the chain checked out: its tail was cut and the head moved back.
				fmt.Fprintf(stdout, "TAMPERED: evidence record %d, anchored outside the database, is gone: the chain now ends at record %d, so records were removed from its end since the anchor was taken\n", anchorSeq, res.HeadSeq)
				return exitNotCompliant
			}
			if rec.Hash != anchorHash {
				fmt.Fprintf(stdout, "TAMPERED: evidence record %d no longer has the anchored MAC: the chain was rewritten since the anchor was taken\n", anchorSeq)
				return exitNotCompliant
			}
		}
		if res.Checked == 0 {
			if *allowEmpty {
				fmt.Fprintln(stdout, "OK: the evidence store is empty (--allow-empty)")
				return exitCompliant
			}
			fmt.Fprintln(stdout, "EMPTY: the evidence store holds no records, so there is no chain to verify. A store sockembot has recorded anything in is never empty: DATABASE_URL names another database, or every record was removed. (--allow-empty accepts an empty store.)")
			return exitNotCompliant
		}
		fmt.Fprint(stdout, verifyReport(res))
		if anchorSeq != 0 {
			fmt.Fprintf(stdout, "anchor: record %d still has MAC %s\n", anchorSeq, anchorHash)
		}
		switch {
		case !res.MACsChecked:
			fmt.Fprintf(stdout, "NOT VERIFIED: SOCKEMBOT_EVIDENCE_KEY is not set, so the MACs of the keyed part were not checked: only the links between the records and the chain head (and the hashes of any records written before the chain was keyed) were. Set it to the bot's evidence key to verify the chain.\n")
			return exitCouldNotRun
		case res.Keyed() == 0:
			fmt.Fprintf(stdout, "NOT VERIFIED: none of the %d records is keyed, so anyone with write access to the database could have rewritten them all. That is expected only until sockembot, run with SOCKEMBOT_EVIDENCE_KEY, records its first evidence after the upgrade; after that it means the records were rewritten. Compare them with an anchor from a deploy thread (--anchor).\n", res.Checked)
			return exitCouldNotRun
		}
		return exitCompliant
	case "report":
		return cmdAuditReport(ctx, args[1:], stdout, stderr, getenv)
	case "export":
		fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
		from := fs.String("from", "", "first day, `YYYY-MM-DD` (or an RFC 3339 instant), inclusive (required)")
		to := fs.String("to", "", "last day, `YYYY-MM-DD` inclusive (or an RFC 3339 instant, exclusive) (required)")
		repo := fs.String("repo", "", "only this repository, `OWNER/NAME` (any case)")
		format := fs.String("format", "csv", "output `format`: csv or json")
		kind := fs.String("kind", "deployments", "`what` to list: deployments (a row per change deployed) or events (every evidence record)")
		if code, done := parseFlags(fs, exportHelp, args[1:], stdout, stderr); done {
			return code
		}
		switch {
		case *from == "":
			return usageError(stderr, "audit export", "--from is required (YYYY-MM-DD or an RFC 3339 time)")
		case *to == "":
			return usageError(stderr, "audit export", "--to is required (YYYY-MM-DD or an RFC 3339 time)")
		case *repo != "" && !validRepo(*repo):
			// A typo here would export nothing and read as "nothing was deployed".
			return usageError(stderr, "audit export", "--repo must be OWNER/NAME (got %q)", *repo)
		}
		fromT, err := parseDay(*from, false)
		if err != nil {
			return usageError(stderr, "audit export", "--from must be a date (YYYY-MM-DD) or an RFC 3339 time (got %q)", *from)
		}
		toT, err := parseDay(*to, true)
		if err != nil {
			return usageError(stderr, "audit export", "--to must be a date (YYYY-MM-DD) or an RFC 3339 time (got %q)", *to)
		}
		if *format != "csv" && *format != "json" {
			return usageError(stderr, "audit export", "--format must be csv or json (got %q)", *format)
		}
		if *kind != "deployments" && *kind != "events" {
			return usageError(stderr, "audit export", "--kind must be deployments or events (got %q)", *kind)
		}
		q := audit.ExportQuery{From: fromT, To: toT, Repo: *repo}
		if err := q.Validate(); err != nil {
			return usageError(stderr, "audit export", "%v", err)
		}
		st, err := store.OpenExisting(ctx, getenv("DATABASE_URL"))
		if err != nil {
			return failure(stderr, "open the evidence store", exportFailed, err)
		}
		defer st.Close()
		switch {
		case *kind == "events" && *format == "json":
			err = audit.WriteEventsJSON(ctx, st, q, stdout)
		case *kind == "events":
			err = audit.WriteEventsCSV(ctx, st, q, stdout)
		case *format == "json":
			err = audit.WriteJSON(ctx, st, q, stdout)
		default:
			err = audit.WriteCSV(ctx, st, q, stdout)
		}
		if err != nil {
			return failure(stderr, "export evidence", exportFailed, err)
		}
		return exitCompliant
	default:
		return usageError(stderr, "audit", "unknown subcommand %q: say export, report or verify", args[0])
	}
}

// openAuditStore opens the existing evidence store to read, with the evidence key when one is
// set (so the chain's MACs can be checked). doing says what failed.
func openAuditStore(ctx context.Context, getenv func(string) string) (st *store.Store, doing string, err error) {
	key, err := evidenceKey(getenv, false)
	if err != nil {
		return nil, "read the evidence key", err
	}
	var opts []store.Option
	if key != nil {
		opts = append(opts, store.WithKey(key))
	}
	if st, err = store.OpenExisting(ctx, getenv("DATABASE_URL"), opts...); err != nil {
		return nil, "open the evidence store", err
	}
	return st, "", nil
}

// cmdAuditReport writes the auditor's HTML report of a period: the chain's check, the figures,
// the charts, the population's completeness, a seeded sample and the exceptions.
func cmdAuditReport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	const name = "audit report"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	from := fs.String("from", "", "first day, `YYYY-MM-DD` (or an RFC 3339 instant), inclusive (required)")
	to := fs.String("to", "", "last day, `YYYY-MM-DD` inclusive (or an RFC 3339 instant, exclusive) (required)")
	repo := fs.String("repo", "", "only this repository, `OWNER/NAME` (any case)")
	env := fs.String("env", "", "only deploys to this environment, e.g. `production`")
	sample := fs.Int("sample", 25, "how many deployed changes to draw for the sample, `N` (0 to "+strconv.Itoa(audit.MaxSample)+")")
	seedText := fs.String("seed", "", "the sample's `SEED` (a number from 0 to 18446744073709551615); default: drawn at random and printed")
	withGitHub := fs.Bool("github", false, "also ask GitHub (credentials as for run) for deployments sockembot did not make and default-branch commits no check covered")
	outFile := fs.String("o", "", "write the report to `FILE` (default: stdout)")
	if code, done := parseFlags(fs, reportHelp, args, stdout, stderr); done {
		return code
	}
	switch {
	case *from == "":
		return usageError(stderr, name, "--from is required (YYYY-MM-DD or an RFC 3339 time)")
	case *to == "":
		return usageError(stderr, name, "--to is required (YYYY-MM-DD or an RFC 3339 time)")
	case *repo != "" && !validRepo(*repo):
		return usageError(stderr, name, "--repo must be OWNER/NAME (got %q)", *repo)
	case strings.ContainsAny(*env, "\x00\n\r\t"):
		return usageError(stderr, name, "--env must be an environment's name (got %q)", *env)
	}
	fromT, err := parseDay(*from, false)
	if err != nil {
		return usageError(stderr, name, "--from must be a date (YYYY-MM-DD) or an RFC 3339 time (got %q)", *from)
	}
	toT, err := parseDay(*to, true)
	if err != nil {
		return usageError(stderr, name, "--to must be a date (YYYY-MM-DD) or an RFC 3339 time (got %q)", *to)
	}
	q := audit.ReportQuery{From: fromT, To: toT, Repo: *repo, Env: *env, Sample: *sample, Generated: time.Now().UTC(), Version: moduleVersion()}
	if *seedText != "" {
		if q.Seed, err = strconv.ParseUint(*seedText, 10, 64); err != nil {
			return usageError(stderr, name, "--seed must be a whole number from 0 to 18446744073709551615 (got %q)", *seedText)
		}
		q.SeedGiven = true
	} else {
		q.Seed = audit.RandomSeed()
	}
	if err := q.Validate(); err != nil {
		return usageError(stderr, name, "%v", err)
	}
	q.Command = reportCommand(q, *withGitHub)
	if *withGitHub {
		gh, err := newGitHub(getenv)
		if err != nil {
			return failure(stderr, "set up GitHub for --github", reportFailed, err)
		}
		q.GitHub = gh
	}
	st, doing, err := openAuditStore(ctx, getenv)
	if err != nil {
		return failure(stderr, doing, reportFailed, err)
	}
	defer st.Close()

	// To a file: whole or not at all. To stdout: streamed, and the failure report says it is
	// incomplete.
	var res audit.ReportOutcome
	info := stderr
	if *outFile != "" {
		info = stdout
		res, err = audit.WriteReportFile(ctx, st, q, *outFile)
	} else {
		res, err = audit.Report(ctx, st, q, stdout)
	}
	if err != nil {
		return failure(stderr, "write the audit report", reportFailed, err)
	}
	fmt.Fprintln(info, res.Chain.Line())
	if *outFile != "" {
		fmt.Fprintf(info, "report: %s\n", *outFile)
	}
	seedNote := "chosen"
	if !q.SeedGiven {
		seedNote = "drawn at random"
	}
	fmt.Fprintf(info, "sample: %d of %d changes deployed, seed %d (%s; --seed %d draws the same sample)\n", res.Sampled, res.Population, res.Seed, seedNote, res.Seed)
	if res.Gaps > 0 {
		fmt.Fprintf(info, "population: %d deploys do not chain to the deploy before them: changes reached an environment outside sockembot (listed in the report)\n", res.Gaps)
	}
	switch {
	case res.Chain.Intact():
		return exitCompliant
	case res.Chain.Unverified():
		return exitCouldNotRun
	}
	return exitNotCompliant // broken, or an empty store
}

// reportCommand is the command line that makes the same report again, shown in the report.
func reportCommand(q audit.ReportQuery, withGitHub bool) string {
	args := []string{"sockembot audit report", "--from", q.From.UTC().Format(time.RFC3339), "--to", q.To.UTC().Format(time.RFC3339)}
	if q.From.Equal(q.From.Truncate(24*time.Hour)) && q.To.Equal(q.To.Truncate(24*time.Hour)) {
		args[2], args[4] = q.From.UTC().Format(time.DateOnly), q.To.AddDate(0, 0, -1).UTC().Format(time.DateOnly)
	}
	if q.Repo != "" {
		args = append(args, "--repo", q.Repo)
	}
	if q.Env != "" {
		args = append(args, "--env", shellWord(q.Env))
	}
	args = append(args, "--sample", strconv.Itoa(q.Sample), "--seed", strconv.FormatUint(q.Seed, 10))
	if withGitHub {
		args = append(args, "--github")
	}
	return strings.Join(args, " ")
}

// verifyReport is what audit verify says of a chain whose links all check out: how many records,
// which part is keyed (and whether its MACs were checked), and the head to keep as an anchor.
func verifyReport(res store.VerifyResult) string {
	var b strings.Builder
	if res.MACsChecked && res.Keyed() > 0 {
		fmt.Fprintf(&b, "OK: %d evidence records, chain intact\n", res.Checked)
	} else {
		fmt.Fprintf(&b, "%d evidence records, every link consistent\n", res.Checked)
	}
	if n := res.Unkeyed(); n > 0 {
		fmt.Fprintf(&b, "unkeyed: records 1-%d, plain SHA-256, written before the chain was keyed", n)
		if res.Keyed() > 0 && res.MACsChecked {
			fmt.Fprintf(&b, "; pinned by record %d's MAC", res.KeyedFrom)
		}
		b.WriteString("\n")
	}
	if res.Keyed() > 0 {
		checked := "every MAC checked"
		if !res.MACsChecked {
			checked = "MACs NOT checked (no key)"
		}
		fmt.Fprintf(&b, "keyed: records %d-%d, HMAC-SHA256, %s\n", res.KeyedFrom, res.HeadSeq, checked)
	}
	what := "MAC"
	if res.Keyed() == 0 {
		what = "hash"
	}
	fmt.Fprintf(&b, "head: record %d, %s %s\n", res.HeadSeq, what, res.HeadHash)
	return b.String()
}

// parseDay reads YYYY-MM-DD (a whole UTC day; as an upper bound it includes that day) or RFC 3339.
func parseDay(s string, upper bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, err
	}
	if upper {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.String("keep", "", "keep the demo's SQLite evidence store in `DIR` (default: a temporary directory, removed)")
	if code, done := parseFlags(fs, demoHelp, args, stdout, stderr); done {
		return code
	}
	var dir, db string // where the store is kept, and its file
	if *keep != "" {
		var err error
		if dir, err = filepath.Abs(*keep); err != nil {
			return usageError(stderr, "demo", "--keep %q: %v", *keep, err)
		}
		db = filepath.Join(dir, "sockembot.db")
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			return usageError(stderr, "demo", "--keep must be a directory (%q is a file)", *keep)
		}
		if strings.ContainsAny(db, "?#") {
			// store.Open refuses such a path: the audit commands could never read the store.
			return usageError(stderr, "demo", "--keep DIR must not contain ? or # (got %q)", *keep)
		}
		if _, err := os.Stat(db); err == nil {
			// The demo's story starts from an empty world; a second one on top of the first
			// would not tell the same story.
			return usageError(stderr, "demo", "--keep %q already holds a demo store (%s): remove it or choose another directory", *keep, db)
		}
	}
	if err := demo.Demo(ctx, stdout, dir); err != nil {
		return failure(stderr, "run the demo", demoFailed, err)
	}
	if db != "" {
		// An absolute path: the commands work from any directory. store.Open takes
		// sqlite://PATH verbatim.
		env := shellQuote("DATABASE_URL=sqlite://" + db)
		keyFile := filepath.Join(dir, demo.KeyFile)
		// The key is read from its file by the shell: printing it would put it in scrollback.
		keyEnv := `SOCKEMBOT_EVIDENCE_KEY="$(cat ` + shellWord(keyFile) + `)"`
		fmt.Fprintf(stderr, "\nThe demo's evidence store is kept in %s, its evidence key in %s, its auditor's report in %s. Read it with:\n  %s %s sockembot audit verify\n  %s sockembot audit export --from 2024-03-01 --to 2024-03-31\n  %s %s sockembot audit report --from 2024-03-01 --to 2024-03-31 -o report.html\n",
			db, keyFile, filepath.Join(dir, demo.ReportFile), env, keyEnv, env, env, keyEnv)
	}
	return exitCompliant
}

// shellQuote quotes an assignment NAME=VALUE for a POSIX shell when VALUE needs it.
func shellQuote(assignment string) string {
	name, value, _ := strings.Cut(assignment, "=")
	return name + "=" + shellWord(value)
}

// shellWord quotes s as one word for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@%+,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cmdRun starts the bot. It refuses to start on anything missing rather than run half-configured:
// a bot that can't verify webhooks or reach Slack would quietly stop enforcing the policy.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	if code, done := parseFlags(fs, runHelp, args, stdout, stderr); done {
		return code
	}
	log := logrus.New()
	log.SetOutput(stderr)
	if f, ok := stderr.(*os.File); !ok || !isTerminal(f) {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	var problems []string
	appToken, botToken := getenv("SLACK_APP_TOKEN"), getenv("SLACK_BOT_TOKEN")
	if !strings.HasPrefix(appToken, "xapp-") {
		problems = append(problems, "SLACK_APP_TOKEN must be set to the app-level token (xapp-...)")
	}
	if !strings.HasPrefix(botToken, "xoxb-") {
		problems = append(problems, "SLACK_BOT_TOKEN must be set to the bot token (xoxb-...)")
	}
	if getenv("GITHUB_TOKEN") == "" && getenv("GITHUB_APP_ID") == "" {
		// Without it the merge gate could set no status, write no comment and create no deployment.
		problems = append(problems, "GITHUB_APP_ID (with GITHUB_APP_PRIVATE_KEY_FILE) or GITHUB_TOKEN must be set (statuses, check runs, comments and deployments are written with it)")
	}
	secret := getenv("GITHUB_WEBHOOK_SECRET")
	if secret == "" {
		problems = append(problems, "GITHUB_WEBHOOK_SECRET must be set (webhooks are verified with it)")
	}
	cfgPath := getenv("SOCKEMBOT_CONFIG")
	if cfgPath == "" {
		cfgPath = "./sockembot.yaml"
	}
	var cfg bot.Config
	if data, err := os.ReadFile(cfgPath); err != nil {
		problems = append(problems, fmt.Sprintf("read config %s: %v", cfgPath, err))
	} else if cfg, err = bot.ParseConfig(data); err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", cfgPath, err))
	} else if cfg.ReleaseChannel == "" {
		problems = append(problems, fmt.Sprintf("%s: release_channel is not set", cfgPath))
	}
	gh, appID, err := newGitHubAuth(getenv)
	if err != nil {
		problems = append(problems, err.Error())
	}
	jc, err := newJira(getenv)
	if err != nil {
		problems = append(problems, err.Error())
	}
	key, err := evidenceKey(getenv, true)
	if err != nil {
		problems = append(problems, err.Error())
	}
	metricsAddr, err := metricsAddress(getenv("METRICS_ADDR"))
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "sockembot run: refusing to start:\n  - %s\nRun 'sockembot run --help' for the environment it reads.\n", strings.Join(problems, "\n  - "))
		return exitCouldNotRun
	}
	st, err := store.Open(ctx, getenv("DATABASE_URL"), store.WithKey(key))
	if err != nil {
		return failure(stderr, "open the evidence store", runNoStart, err)
	}
	defer st.Close()
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host, _ := os.Hostname()
	app := &bot.App{
		Config:        cfg,
		GitHub:        gh,
		Jira:          jc,
		Store:         st,
		Slack:         slackapi.New(slackapi.Options{BotToken: botToken, AppToken: appToken, APIURL: getenv("SLACK_API_URL"), Log: log}),
		WebhookSecret: []byte(secret),
		GitHubAppID:   appID,
		Addr:          ":" + port,
		Log:           log,
		ReplicaID:     fmt.Sprintf("%s-%d", host, os.Getpid()),
		MetricsAddr:   metricsAddr,
		MetricsToken:  getenv("METRICS_TOKEN"),
	}
	mode := "token"
	if appID != 0 {
		mode = "app"
	}
	log.WithFields(logrus.Fields{"port": port, "store": st.Dialect(), "services": len(cfg.Services), "github": mode}).Info("sockembot starting")
	if w := metricsWarning(metricsAddr, app.MetricsToken != ""); w != "" {
		log.Warn(w)
	}
	for _, w := range cfg.Warnings() {
		log.Warn("config: " + w)
	}
	if w := storeWarning(getenv); w != "" {
		log.Warn("EVIDENCE AT RISK: " + w)
	}
	if err := app.Run(ctx); err != nil {
		return failure(stderr, "run the bot", runFailed, err)
	}
	return exitCompliant
}

// metricsAddress is where run serves /metrics, from METRICS_ADDR: unset is 127.0.0.1:9090 (this
// host only), "off" is nowhere (""), anything else must be HOST:PORT.
func metricsAddress(v string) (string, error) {
	switch v {
	case "":
		return "127.0.0.1:9090", nil
	case "off":
		return "", nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return "", fmt.Errorf("METRICS_ADDR must be HOST:PORT (e.g. 127.0.0.1:9090) or off (got %q)", v)
	}
	return v, nil
}

// metricsWarning is what run says when /metrics is served beyond this host with no token.
func metricsWarning(addr string, token bool) string {
	if addr == "" || token {
		return ""
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || host == "localhost" {
		return ""
	}
	return fmt.Sprintf("metrics: /metrics is served on %s without METRICS_TOKEN: anyone who can reach that address can read them", addr)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
