package rerun_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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

// TestEachPermanentPattern tries every built-in pattern on its own, so a
// pattern that stops matching fails its own row, however many others would
// still catch the detail: a detail it must match (and for which the
// classifier reports what this pattern matched), and a near one it must not.
func TestEachPermanentPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern     string
		match, miss string
	}{
		{`channel_not_found`, "Slack API error: channel_not_found", "Slack API error: channel not found"},
		{`not_in_channel`, "Slack API error: not_in_channel", "posted in channel #sales"},
		{`is_archived`, "Slack API error: is_archived", "the channel was archived"},
		{`invalid_auth`, "Slack API error: invalid_auth", "Slack API error: invalid_arguments"},
		{`account_inactive`, "Slack: account_inactive", "Slack: account active"},
		{`token_revoked`, "Slack API error: token_revoked", "token refreshed"},
		{`token_expired`, "Slack API error: token_expired", "token_expiring soon"},
		{`missing_scope`, "Slack API error: missing_scope", "missing scheduled plan field"},
		{`restricted_action`, "Slack API error: restricted_action", "restricted to 5 actions a minute"},
		{`does not have (the )?permission`, "User does not have the permission to see this Look", "it does not have a permission set yet"},
		{`insufficient permission`, "Insufficient permissions to schedule", "insufficient memory"},
		{`not authorized`, "Webhook answered: NOT AUTHORIZED", "authorized after a retry"},
		{`permission denied`, "Permission denied for look 7", "permission granted"},
		{`user (is|has been|was) (disabled|deactivated)`, "The user has been deactivated", "the user is enabled"},
		{`(owner|user) .*is disabled`, "Owner Ana Lyst is disabled", "Owner Ana Lyst is away"},
		{`not (in|on) the (email )?domain allow ?list`, "recipient bob@other.com is not in the email domain allowlist", "recipient is in the domain allow list"},
		{`guardrail`, "Query exceeds the dashboard guardrail", "guard rails"},
		{`has been deleted`, "Look 7 has been deleted", "Look 7 has been delayed"},
	}
	var rows []string
	for _, tt := range tests {
		rows = append(rows, tt.pattern)
	}
	if diff := cmp.Diff(rerun.PermanentPatterns, rows); diff != "" {
		t.Errorf("every built-in pattern needs a row (-built in +rows):\n%s", diff)
	}
	c, err := rerun.NewClassifier("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			t.Parallel()
			re := regexp.MustCompile("(?i)" + tt.pattern) // case-insensitive, as the classifier is
			got := re.FindString(tt.match)
			if got == "" {
				t.Fatalf("does not match %q", tt.match)
			}
			if byAll := c.Permanent(tt.match); byAll != got {
				t.Errorf("the classifier finds %q in %q, want this pattern's %q", byAll, tt.match, got)
			}
			if m := re.FindString(tt.miss); m != "" {
				t.Errorf("matches %q in %q, want no match", m, tt.miss)
			}
			if re.MatchString("") {
				t.Error("matches an empty string")
			}
		})
	}
}

// TestExtraPatternThatMatchesEmpty: an extra pattern that can match an empty
// string would win at the start of every detail and hide every built-in one,
// so it is refused, saying why.
func TestExtraPatternThatMatchesEmpty(t *testing.T) {
	t.Parallel()
	for _, extra := range []string{`quota exceeded|`, `|quota exceeded`, `.*`, `a*`, `(quota)?`, `x{0,3}`, `(?i)(quota|)`, `\b`, `^`, `$`, `(?m)^$`, `()`} {
		t.Run(extra, func(t *testing.T) {
			t.Parallel()
			c, err := rerun.NewClassifier(extra)
			if err == nil || !strings.Contains(err.Error(), "empty string") {
				t.Errorf("NewClassifier(%q) = %v, want an error saying it matches an empty string", extra, err)
			}
			if c != nil {
				t.Errorf("NewClassifier(%q) returned a classifier with its error", extra)
			}
		})
	}
	for _, extra := range []string{`quota exceeded`, `(?i)quota|limit`, `\bquota\b`, `x+`, `a*b`, `(quota)+`, `x{1,3}`, `^quota`} {
		t.Run(extra, func(t *testing.T) {
			t.Parallel()
			c, err := rerun.NewClassifier(extra)
			if err != nil {
				t.Fatalf("NewClassifier(%q): %v", extra, err)
			}
			if got := c.Permanent("Slack API error: channel_not_found"); got != "channel_not_found" {
				t.Errorf("with %q the built-in patterns find %q, want channel_not_found", extra, got)
			}
		})
	}
}
