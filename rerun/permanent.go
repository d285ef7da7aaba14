package rerun

import (
	"errors"
	"regexp"
	"regexp/syntax"
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
// that regular expression too. It refuses an extra that can match an empty
// string (a trailing |, .*, a*, \b): the classifier takes the leftmost
// match, and an empty one at the start of every detail would hide every
// built-in pattern.
func NewClassifier(extra string) (*Classifier, error) {
	alts := make([]string, 0, len(PermanentPatterns)+1)
	for _, p := range PermanentPatterns {
		alts = append(alts, "(?:"+p+")")
	}
	if strings.TrimSpace(extra) != "" {
		if _, err := regexp.Compile(extra); err != nil {
			return nil, err
		}
		re, err := syntax.Parse(extra, syntax.Perl)
		if err != nil {
			return nil, err
		}
		if matchesEmpty(re) {
			return nil, errors.New("it can match an empty string (as a trailing |, .* or a* do), which would switch off every built-in pattern: each alternative must match some text")
		}
		alts = append(alts, "(?:"+extra+")")
	}
	return &Classifier{re: regexp.MustCompile("(?i)" + strings.Join(alts, "|"))}, nil
}

// matchesEmpty reports whether re can match an empty string in some text.
// It takes every empty-width assertion (^, $, \b) as one that can hold, so
// it errs on the side of refusing: a pattern it refuses (^$, say) could only
// ever match an empty detail, which is never permanent.
func matchesEmpty(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpStar, syntax.OpQuest,
		syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCapture, syntax.OpPlus:
		return matchesEmpty(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min == 0 || matchesEmpty(re.Sub[0])
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !matchesEmpty(sub) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if matchesEmpty(sub) {
				return true
			}
		}
	}
	// OpNoMatch and the ones that consume a character.
	return false
}

// Permanent returns the part of detail that marks it as a failure a re-run
// cannot fix, or "". A nil classifier finds nothing permanent.
func (c *Classifier) Permanent(detail string) string {
	if c == nil || detail == "" {
		return ""
	}
	return c.re.FindString(detail)
}
