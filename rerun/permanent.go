package rerun

import (
	"regexp"
	"strings"
)

// PermanentPatterns are the failures a re-run cannot fix, matched against
// Looker's scheduled_job.status_detail (case-insensitive). They are listed in
// the README; RERUN_PERMANENT_PATTERN adds more.
var PermanentPatterns = []string{
	// Slack: the channel, the bot or its token is gone.
	`channel_not_found`, `not_in_channel`, `is_archived`, `invalid_auth`, `account_inactive`,
	`token_revoked`, `token_expired`, `missing_scope`, `restricted_action`,
	// The owner lost the right to run or send the content, or was disabled.
	`does not have (the )?permission`, `insufficient permission`, `not authorized`, `permission denied`,
	`user (is|has been|was) (disabled|deactivated)`, `(owner|user) .*is disabled`,
	`not (in|on) the (email )?domain allow ?list`,
	// The content cannot be delivered as it is.
	`guardrail`, `has been deleted`,
}

// Classifier tells permanent failures from the rest.
type Classifier struct{ re *regexp.Regexp }

// NewClassifier compiles the built-in patterns and, when extra is not empty,
// that regular expression too.
func NewClassifier(extra string) (*Classifier, error) {
	alts := make([]string, 0, len(PermanentPatterns)+1)
	for _, p := range PermanentPatterns {
		alts = append(alts, "(?:"+p+")")
	}
	if strings.TrimSpace(extra) != "" {
		if _, err := regexp.Compile(extra); err != nil {
			return nil, err
		}
		alts = append(alts, "(?:"+extra+")")
	}
	return &Classifier{re: regexp.MustCompile("(?i)" + strings.Join(alts, "|"))}, nil
}

// Permanent returns the part of detail that marks it as a failure a re-run
// cannot fix, or "". A nil classifier finds nothing permanent.
func (c *Classifier) Permanent(detail string) string {
	if c == nil || detail == "" {
		return ""
	}
	return c.re.FindString(detail)
}
