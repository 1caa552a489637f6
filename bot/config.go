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
	// Emergency lists, per environment, who may break glass: deploy past violations with a
	// reason. An environment not listed has no emergency path.
	Emergency map[string][]string `yaml:"emergency"`
	// EmergencyChannel, when set, also hears of every emergency deploy.
	EmergencyChannel string `yaml:"emergency_channel"`
	// People maps Slack user ids to GitHub logins, for separation of duties.
	People map[string]string `yaml:"people"`
	// ProductionEnvironments are where separation of duties applies; default [production].
	ProductionEnvironments []string          `yaml:"production_environments"`
	Policy                 compliance.Policy `yaml:"policy"`
	Schedules              Schedules         `yaml:"schedules"`
}

// Service is one deployable service.
type Service struct {
	Repo         string   `yaml:"repo"`
	Environments []string `yaml:"environments"`
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
	if !slices.Equal(c.ProductionEnvironments, []string{"production"}) { // the default may name none
		unknownEnvs("production_environments", slices.Clone(c.ProductionEnvironments))
	}
	if err := c.Policy.Validate(); err != nil {
		problems = append(problems, err.Error())
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
	return deploygate.Config{
		ReleaseChannel: c.ReleaseChannel, Services: services, Deployers: c.Deployers,
		Emergency: c.Emergency, EmergencyChannel: c.EmergencyChannel, People: c.People,
		ProductionEnvironments: c.ProductionEnvironments, Policy: c.Policy,
	}
}
