package looker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Query is the part of Looker's Query body that looker-rerun sends to
// run_inline_query.
type Query struct {
	Model         string            `json:"model"`
	View          string            `json:"view"`
	Fields        []string          `json:"fields"`
	Filters       map[string]string `json:"filters,omitempty"`
	Sorts         []string          `json:"sorts,omitempty"`
	Limit         string            `json:"limit,omitempty"`
	QueryTimezone string            `json:"query_timezone,omitempty"`
}

// Row is one row of a query's json result, keyed by field name. Values are
// kept raw: Looker answers numbers, strings and null depending on the field.
type Row map[string]json.RawMessage

// ScheduledPlan is the part of Looker's ScheduledPlan that looker-rerun reads.
type ScheduledPlan struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	UserID            string `json:"user_id"`
	RunOnce           bool   `json:"run_once"`
	Enabled           bool   `json:"enabled"`
	LookID            string `json:"look_id"`
	DashboardID       string `json:"dashboard_id"`
	LookMLDashboardID string `json:"lookml_dashboard_id"`
	// QueryID is the query a plan sends when it is on a query rather than
	// a Look or dashboard.
	QueryID string `json:"query_id"`
	// RunAsRecipient runs the content as each recipient, who then sees
	// their own data.
	RunAsRecipient bool `json:"run_as_recipient"`
	// FiltersString is the filters the content is run with, as a URL query
	// string; DashboardFilters is its deprecated alias.
	FiltersString    string `json:"filters_string"`
	DashboardFilters string `json:"dashboard_filters"`
	// Destinations are where the plan delivers, in the order Looker lists
	// them (which a run-once copy need not keep).
	Destinations []Destination `json:"scheduled_plan_destination"`
	// CreatedAt and UpdatedAt are absolute times (RFC 3339 with an offset),
	// whatever time zone Looker's queries answer in. Zero when Looker gave
	// none.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Destination is the part of Looker's ScheduledPlanDestination that says
// what is delivered where.
type Destination struct {
	// Type is email, webhook, s3, sftp or an action's.
	Type string `json:"type"`
	// Format is the data format sent, such as csv or wysiwyg_pdf.
	Format  string `json:"format"`
	Address string `json:"address"`
	// Parameters is a JSON object of the destination's settings, such as
	// the channel of an action (Slack through the Action Hub has one
	// address for every channel). Looker writes secrets to
	// secret_parameters, which it never answers.
	Parameters string `json:"parameters"`
}

// ScheduledPlan returns a scheduled plan (operation scheduled_plan), with
// only the given fields when any are named.
func (c *Client) ScheduledPlan(ctx context.Context, planID string, fields ...string) (ScheduledPlan, error) {
	var p ScheduledPlan
	var q url.Values
	if len(fields) > 0 {
		q = url.Values{"fields": {strings.Join(fields, ",")}}
	}
	req, err := c.newRequest(ctx, http.MethodGet, "scheduled_plans/"+url.PathEscape(planID), q, nil)
	if err != nil {
		return p, fmt.Errorf("looker: get scheduled plan %s: %w", planID, err)
	}
	if err := c.do(c.hc, req, &p); err != nil {
		return p, fmt.Errorf("looker: get scheduled plan %s: %w", planID, err)
	}
	return p, nil
}

// noCache asks Looker to run the query rather than answer from its cache:
// System Activity's explores are cached for 12 hours.
var noCache = url.Values{"cache": {"false"}}

// RunLook runs a saved Look and returns its rows (operation run_look, json
// format, cache=false). A limit above 0 replaces the Look's own row limit;
// Looker cuts the result there silently.
func (c *Client) RunLook(ctx context.Context, lookID string, limit int) ([]Row, error) {
	q := url.Values{"cache": {"false"}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	req, err := c.newRequest(ctx, http.MethodGet, "looks/"+url.PathEscape(lookID)+"/run/json", q, nil)
	if err != nil {
		return nil, fmt.Errorf("looker: run look %s: %w", lookID, err)
	}
	var rows []Row
	if err := c.do(c.hc, req, rowSink(func(r Row) error { rows = append(rows, r); return nil })); err != nil {
		return nil, fmt.Errorf("looker: run look %s: %w", lookID, err)
	}
	return rows, nil
}

// RunInlineQuery runs q (operation run_inline_query, json format,
// cache=false) and calls fn with each row as it is decoded, so a large
// result never sits in memory whole. An error from fn stops the run and is
// returned. Looker silently cuts a result at the query's limit: callers that
// need every row must count them.
func (c *Client) RunInlineQuery(ctx context.Context, q Query, fn func(Row) error) error {
	req, err := c.newRequest(ctx, http.MethodPost, "queries/run/json", noCache, q)
	if err != nil {
		return fmt.Errorf("looker: run inline query on %s/%s: %w", q.Model, q.View, err)
	}
	if err := c.do(c.hc, req, rowSink(fn)); err != nil {
		return fmt.Errorf("looker: run inline query on %s/%s: %w", q.Model, q.View, err)
	}
	return nil
}

// RunOnce runs a scheduled plan now (operation scheduled_plan_run_once_by_id):
// Looker copies the plan into a new run-once plan, runs the copy and answers
// with it. It is not idempotent: each successful call delivers once more. The
// request goes through the WithRunOnceHTTPClient client, when the
// WithRunOnceRate pace lets it: when ctx ends first, the error wraps
// ErrNotSent and ctx's error. Once its turn comes, ctx's start check
// (WithStartCheck) may still hold it back: the error then wraps ErrNotSent
// and the check's error.
func (c *Client) RunOnce(ctx context.Context, planID string) (ScheduledPlan, error) {
	var p ScheduledPlan
	if err := c.pacer.wait(ctx); err != nil {
		return p, fmt.Errorf("looker: run scheduled plan %s: %w: %w", planID, ErrNotSent, err)
	}
	if err := mayStart(ctx); err != nil {
		return p, fmt.Errorf("looker: run scheduled plan %s: %w", planID, err)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "scheduled_plans/"+url.PathEscape(planID)+"/run_once", nil, nil)
	if err != nil {
		return p, fmt.Errorf("looker: run scheduled plan %s: %w", planID, err)
	}
	if err := c.do(c.runOnceHC, req, &p); err != nil {
		return p, fmt.Errorf("looker: run scheduled plan %s: %w", planID, err)
	}
	if p.ID == "" {
		return p, fmt.Errorf("looker: run scheduled plan %s: the answer has no plan id", planID)
	}
	return p, nil
}
