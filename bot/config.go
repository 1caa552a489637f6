package bot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"sockembot/bot/check"
	"sockembot/bot/deploygate"
	"sockembot/compliance"
)

// Config is sockembot.yaml. Unknown keys are refused: a typo in a compliance setting must not
// silently fall back to a default.
type Config struct {
	ReleaseChannel string             `yaml:"release_channel"`
	Services       map[string]Service `yaml:"services"`
	// Deployers lists, per environment, the Slack user and user group ids who may deploy there.
	Deployers map[string][]string `yaml:"deployers"`
	// Emergency says, per environment, who may break glass (deploy past violations with a
	// reason) and who may review such a deploy afterwards. An environment not listed has no
	// emergency path.
	Emergency map[string]EmergencyAccess `yaml:"emergency"`
	// EmergencyChannel, when set, also hears of every emergency deploy.
	EmergencyChannel string `yaml:"emergency_channel"`
	// People maps Slack user ids to GitHub logins, for separation of duties.
	People map[string]string `yaml:"people"`
	// ProductionEnvironments are where separation of duties applies; default [production].
	ProductionEnvironments []string          `yaml:"production_environments"`
	Policy                 compliance.Policy `yaml:"policy"`
	// PolicyOwners are the GitHub logins one of whom must approve any change to a repository's
	// .sockembot.yml. PolicyFloor is the loosest policy a repository's own file may put in
	// force (settings it does not name are not held); default: the global policy. Both end
	// up in Policy (Owners, Floor), which is what the gates pass to each check.
	PolicyOwners []string  `yaml:"policy_owners"`
	PolicyFloor  yaml.Node `yaml:"policy_floor"`
	Schedules    Schedules `yaml:"schedules"`
}

// Service is one deployable service.
type Service struct {
	Repo         string   `yaml:"repo"`
	Environments []string `yaml:"environments"`
}

// EmergencyAccess is one environment's emergency entry: either a list of who may break glass
// (Slack user and user group ids), or a mapping {break_glass: [...], reviewers: [...]}.
// Reviewers close the retroactive reviews an emergency deploy opens; without the key, the
// environment's deployers do (never the requester, the deployer or the change's author). With
// neither, nobody can review from Slack: a retroactive review is not left to anyone who asks.
type EmergencyAccess struct {
	BreakGlass []string `yaml:"break_glass"`
	Reviewers  []string `yaml:"reviewers"`
	// reviewersSet tells `reviewers: []` (nobody) from no key (the deployers).
	reviewersSet bool
}

// UnmarshalYAML reads either form of an emergency entry, refusing unknown keys.
func (e *EmergencyAccess) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		return n.Decode(&e.BreakGlass)
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: an emergency entry is a list of who may break glass, or {break_glass: [...], reviewers: [...]}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		switch key.Value {
		case "break_glass":
			if err := val.Decode(&e.BreakGlass); err != nil {
				return err
			}
		case "reviewers":
			if err := val.Decode(&e.Reviewers); err != nil {
				return err
			}
			e.reviewersSet = true
		default:
			return fmt.Errorf("line %d: field %s not found in an emergency entry (break_glass, reviewers)", key.Line, key.Value)
		}
	}
	return nil
}

// WithReviewers sets who reviews emergency deploys to an environment (nil: nobody).
func (e EmergencyAccess) WithReviewers(ids ...string) EmergencyAccess {
	e.Reviewers, e.reviewersSet = ids, true
	return e
}

// Schedules are cron expressions (robfig/cron, with optional seconds field off).
type Schedules struct {
	Reconcile    string `yaml:"reconcile"`
	DailySummary string `yaml:"daily_summary"`
}

// DefaultConfig holds the defaults every loaded file starts from.
func DefaultConfig() Config {
	return Config{
		Policy:                 compliance.DefaultPolicy(),
		Schedules:              Schedules{Reconcile: "*/10 * * * *", DailySummary: "0 9 * * *"},
		ProductionEnvironments: []string{"production"},
	}
}

// ParseConfig reads a YAML config over the defaults and validates it.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg.Policy.Owners = cfg.PolicyOwners
	if cfg.PolicyFloor.Kind != 0 {
		text, err := yaml.Marshal(&cfg.PolicyFloor)
		if err != nil {
			return Config{}, fmt.Errorf("config: policy_floor: %w", err)
		}
		floor, err := check.ParseFloor(text)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		cfg.Policy.Floor = &floor
	}
	return cfg, cfg.Validate()
}

// Warnings are settings that are allowed but probably not meant: a production environment
// anyone in the workspace may deploy to.
func (c Config) Warnings() []string {
	var out []string
	envs := map[string]bool{}
	for _, svc := range c.Services {
		for _, e := range svc.Environments {
			envs[e] = true
		}
	}
	for env, reviewers := range c.retroReviewers() {
		if len(reviewers) == 0 {
			out = append(out, fmt.Sprintf("emergency deploys to %q have nobody to review them afterwards: set emergency.%s.reviewers (or deployers.%s)", env, env, env))
		}
	}
	for _, env := range c.ProductionEnvironments {
		if _, listed := c.Deployers[env]; envs[env] && !listed {
			out = append(out, fmt.Sprintf("production environment %q has no deployers entry: anyone in the workspace may deploy to it, and lock or unlock it", env))
		}
	}
	sort.Strings(out)
	return out
}

// Validate says what is wrong with a config, all at once.
func (c Config) Validate() error {
	var problems []string
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := c.Services[n]
		if s.Repo == "" {
			problems = append(problems, fmt.Sprintf("service %q has no repo", n))
		} else if parts := strings.Split(s.Repo, "/"); len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			problems = append(problems, fmt.Sprintf("service %q: repo %q is not OWNER/NAME", n, s.Repo))
		}
		if len(s.Environments) == 0 {
			problems = append(problems, fmt.Sprintf("service %q lists no environments", n))
		}
	}
	// An environment named under deployers or emergency that no service deploys to is a typo
	// ("prodution"), and would leave the real one open to everyone: refuse it.
	known := map[string]bool{}
	var knownList []string
	for _, n := range names {
		for _, e := range c.Services[n].Environments {
			if !known[e] {
				known[e] = true
				knownList = append(knownList, e)
			}
		}
	}
	unknownEnvs := func(key string, envs []string) {
		slices.Sort(envs)
		for _, e := range envs {
			if !known[e] {
				problems = append(problems, fmt.Sprintf("%s: %q is not an environment of any service (they are: %s)", key, e, strings.Join(knownList, ", ")))
			}
		}
	}
	unknownEnvs("deployers", slices.Collect(maps.Keys(c.Deployers)))
	unknownEnvs("emergency", slices.Collect(maps.Keys(c.Emergency)))
	for _, env := range slices.Sorted(maps.Keys(c.Emergency)) {
		if len(c.Emergency[env].BreakGlass) == 0 {
			problems = append(problems, fmt.Sprintf("emergency: %q lists nobody who may break glass", env))
		}
	}
	if !slices.Equal(c.ProductionEnvironments, []string{"production"}) { // the default may name none
		unknownEnvs("production_environments", slices.Clone(c.ProductionEnvironments))
	}
	if err := c.Policy.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if c.Policy.Floor != nil {
		if loose := compliance.Loosenings(c.Policy, *c.Policy.Floor); len(loose) > 0 {
			problems = append(problems, "policy is looser than policy_floor: "+strings.Join(loose, "; "))
		}
	}
	for i, o := range c.PolicyOwners {
		if strings.TrimSpace(o) == "" || strings.ContainsAny(o, " \t@") {
			problems = append(problems, fmt.Sprintf("policy_owners[%d]: %q is not a GitHub login", i, o))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Repos are the configured repositories, each once, in a stable order.
func (c Config) Repos() []string {
	seen := map[string]bool{}
	var repos []string
	for _, s := range c.Services {
		if s.Repo != "" && !seen[s.Repo] {
			seen[s.Repo] = true
			repos = append(repos, s.Repo)
		}
	}
	sort.Strings(repos)
	return repos
}

// deployConfig is the part of the config the deploy gate reads.
func (c Config) deployConfig() deploygate.Config {
	services := make(map[string]deploygate.Service, len(c.Services))
	for name, s := range c.Services {
		services[name] = deploygate.Service{Repo: s.Repo, Environments: s.Environments}
	}
	breakGlass := map[string][]string{}
	for env, e := range c.Emergency {
		breakGlass[env] = e.BreakGlass
	}
	return deploygate.Config{
		ReleaseChannel: c.ReleaseChannel, Services: services, Deployers: c.Deployers,
		Emergency: breakGlass, EmergencyChannel: c.EmergencyChannel, People: c.People,
		ProductionEnvironments: c.ProductionEnvironments, Policy: c.Policy,
	}
}

// retroReviewers is, per environment with an emergency path, who may close its retroactive
// reviews: the configured reviewers, else its deployers (an environment without a deployers
// entry gets nobody: a review is not open to anyone in the workspace).
func (c Config) retroReviewers() map[string][]string {
	out := map[string][]string{}
	for env, e := range c.Emergency {
		switch {
		case e.reviewersSet || len(e.Reviewers) > 0:
			out[env] = e.Reviewers
		default:
			out[env] = c.Deployers[env]
		}
	}
	return out
}
