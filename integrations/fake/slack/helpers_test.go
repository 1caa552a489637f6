package fakeslack_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	fakeslack "sockembot/integrations/fake/slack"
)

// fixtures is the repository's testdata/: this package sits three levels below the root.
const fixtures = "../../../testdata"

const waitTimeout = 10 * time.Second

// harness is a fake Slack with the real slack-go Web API and socket-mode
// clients running against it.
type harness struct {
	fake *fakeslack.Server
	api  *slack.Client
	sm   *socketmode.Client
}

func start(t *testing.T, cfg fakeslack.Config) *harness {
	t.Helper()
	fake := fakeslack.New(cfg)
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken(fake.AppToken()))
	sm := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sm.RunContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("socketmode client did not stop")
		}
		fake.Close()
	})
	return &harness{fake: fake, api: api, sm: sm}
}

// next returns the next socket-mode event of type typ, skipping the
// client's own connection events.
func (h *harness) next(t *testing.T, typ socketmode.EventType) socketmode.Event {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case evt := <-h.sm.Events:
			if evt.Type == typ {
				return evt
			}
			switch evt.Type {
			case socketmode.EventTypeConnecting, socketmode.EventTypeConnected, socketmode.EventTypeHello:
			default:
				t.Logf("skipping socket-mode event %s while waiting for %s", evt.Type, typ)
			}
		case <-timeout:
			t.Fatalf("no %s event within %s", typ, waitTimeout)
		}
	}
}

// eventually polls cond until it holds; it asserts an outcome, not a time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, rel))
	if err != nil {
		t.Fatalf("fixture %s (testdata/ at the repository root): %v", rel, err)
	}
	return b
}

// keyPaths lists every object key in a JSON document as a dotted path,
// with [] for array elements, ignoring values. Block contents are the bot's
// own, echoed back, so they are not part of the shape compared.
func keyPaths(t *testing.T, raw []byte) map[string]bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	out := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, child := range x {
				p := strings.TrimPrefix(prefix+"."+k, ".")
				out[p] = true
				if k != "blocks" {
					walk(p, child)
				}
			}
		case []any:
			for _, child := range x {
				walk(prefix+"[]", child)
			}
		}
	}
	walk("", v)
	return out
}

// missing returns the paths of want absent from got, sorted.
func missing(want, got map[string]bool) []string {
	var out []string
	for p := range want {
		if !got[p] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func union(sets ...map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, s := range sets {
		for k := range s {
			out[k] = true
		}
	}
	return out
}
