package rerun_test

import (
	"testing"

	"github.com/looker-rerun/looker-rerun/rerun"
)

func TestClassifier(t *testing.T) {
	t.Parallel()
	c, err := rerun.NewClassifier(`(?i)quota exceeded`)
	if err != nil {
		t.Fatal(err)
	}
	permanent := []string{
		"Slack API error: channel_not_found", "Slack API error: not_in_channel", "Slack API error: is_archived",
		"Slack API error: invalid_auth", "Slack: account_inactive", "token_revoked", "Slack: missing_scope",
		"User does not have permission to access this content", "Insufficient permissions to schedule",
		"The user has been disabled", "Owner Ana Lyst is disabled", "Permission denied for look 7",
		"recipient bob@other.com is not in the email domain allowlist", "Query exceeds the dashboard guardrail",
		"Look 7 has been deleted", "QUOTA EXCEEDED for hooks.example.com",
	}
	transient := []string{
		"Slack API error: ratelimited", "Query timed out", "SMTP 451 temporary failure", "Webhook answered 502",
		"Connection reset by peer", "", "Cache expired while rendering",
	}
	for _, d := range permanent {
		if c.Permanent(d) == "" {
			t.Errorf("%q: not permanent, want permanent", d)
		}
	}
	for _, d := range transient {
		if m := c.Permanent(d); m != "" {
			t.Errorf("%q: permanent (matched %q), want transient", d, m)
		}
	}
	if _, err := rerun.NewClassifier("(unclosed"); err == nil {
		t.Error("a bad pattern compiled")
	}
	var none *rerun.Classifier
	if none.Permanent("channel_not_found") != "" {
		t.Error("a nil classifier found something")
	}
}
