package fakeslack_test

import (
	"testing"

	"github.com/slack-go/slack"

	fakeslack "sockembot/integrations/fake/slack"
)

func TestRender(t *testing.T) {
	fake, api := newAPI(t, fakeslack.Config{ChannelNames: map[string]string{"C0DEPLOY": "deploys"}})
	if got := fake.Render(); got != "" {
		t.Errorf("Render() of an empty workspace = %q", got)
	}
	text := func(typ, s string) *slack.TextBlockObject { return slack.NewTextBlockObject(typ, s, false, false) }

	_, digestTS, err := api.PostMessage("C0DEPLOY", slack.MsgOptionText("Deploy payments@v1.2.3 to production", false), slack.MsgOptionBlocks(
		slack.NewHeaderBlock(text(slack.PlainTextType, "Deploy payments@v1.2.3 to production")),
		slack.NewSectionBlock(text(slack.MarkdownType, "*3 changes*, 0 violations"),
			[]*slack.TextBlockObject{text(slack.MarkdownType, "*Service:* payments"), text(slack.MarkdownType, "*Env:* production")}, nil),
		slack.NewDividerBlock(),
		slack.NewContextBlock("", text(slack.MarkdownType, "requested by <@U123>"), text(slack.MarkdownType, "digest sha256:ab12")),
		slack.NewActionBlock("deploy",
			slack.NewButtonBlockElement("deploy_approve", "1", text(slack.PlainTextType, "Deploy")),
			slack.NewButtonBlockElement("deploy_cancel", "1", text(slack.PlainTextType, "Cancel"))),
	))
	if err != nil {
		t.Fatal(err)
	}
	mustPost := func(channel string, opts ...slack.MsgOption) string {
		t.Helper()
		_, ts, err := api.PostMessage(channel, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	mustPost("C0DEPLOY", slack.MsgOptionText("Deployment 42 created\nwatching rollout", false), slack.MsgOptionTS(digestTS))
	checkTS := mustPost("C0DEPLOY", slack.MsgOptionText("Checking web@v9...", false))
	mustPost("C0OTHER", slack.MsgOptionText("merge gate: PR #7 blocked", false))
	if _, _, _, err := api.UpdateMessage("C0DEPLOY", checkTS, slack.MsgOptionText("Check done: 0 violations", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeral("C0DEPLOY", "U123", slack.MsgOptionText("Only you can see this", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeral("C0DEPLOY", "U123", slack.MsgOptionBlocks(
		slack.NewSectionBlock(text(slack.MarkdownType, "Not approved yet"), nil, slack.NewAccessory(
			slack.NewButtonBlockElement("remind", "x", text(slack.PlainTextType, "Remind approvers")))))); err != nil {
		t.Fatal(err)
	}

	want := `#deploys (C0DEPLOY)
- # Deploy payments@v1.2.3 to production
  *3 changes*, 0 violations
  *Service:* payments | *Env:* production
  ---
  ~ requested by <@U123> | digest sha256:ab12
  [Deploy] [Cancel]
    - Deployment 42 created
      watching rollout
- Check done: 0 violations (edited)

#C0OTHER
- merge gate: PR #7 blocked

ephemeral to @U123
- in #deploys: Only you can see this
- in #deploys: Not approved yet [Remind approvers]
`
	if got := fake.Render(); got != want {
		t.Errorf("Render() =\n%s\nwant\n%s", got, want)
	}
}
