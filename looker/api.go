package looker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
	LookID            string `json:"look_id"`
	DashboardID       string `json:"dashboard_id"`
	LookMLDashboardID string `json:"lookml_dashboard_id"`
}

// noCache asks Looker to run the query rather than answer from its cache:
// System Activity's explores are cached for 12 hours.
var noCache = url.Values{"cache": {"false"}}

// RunLook runs a saved Look and returns its rows (operation run_look, json
// format, cache=false).
func (c *Client) RunLook(ctx context.Context, lookID string) ([]Row, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "looks/"+url.PathEscape(lookID)+"/run/json", noCache, nil)
	if err != nil {
		return nil, fmt.Errorf("looker: run look %s: %w", lookID, err)
	}
	rows, err := c.rows(req)
	if err != nil {
		return nil, fmt.Errorf("looker: run look %s: %w", lookID, err)
	}
	return rows, nil
}

// RunInlineQuery runs q and returns its rows (operation run_inline_query, json
// format, cache=false). Looker silently cuts a result at the query's limit:
// callers that need every row must check for a full page.
func (c *Client) RunInlineQuery(ctx context.Context, q Query) ([]Row, error) {
	req, err := c.newRequest(ctx, http.MethodPost, "queries/run/json", noCache, q)
	if err != nil {
		return nil, fmt.Errorf("looker: run inline query on %s/%s: %w", q.Model, q.View, err)
	}
	rows, err := c.rows(req)
	if err != nil {
		return nil, fmt.Errorf("looker: run inline query on %s/%s: %w", q.Model, q.View, err)
	}
	return rows, nil
}

// rows sends req and decodes its json result.
func (c *Client) rows(req *http.Request) ([]Row, error) {
	var raw json.RawMessage
	if err := c.do(c.hc, req, &raw); err != nil {
		return nil, err
	}
	return DecodeRows(raw)
}

// DecodeRows decodes a json result: an array of objects. A query that fails
// in the database still answers 200, with the error as a row (or object)
// holding looker_error; that is returned as an error.
func DecodeRows(raw []byte) ([]Row, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		// Never read as "nothing failed".
		return nil, errors.New("want a JSON array of rows, got null or nothing")
	}
	var rows []Row
	if err := json.Unmarshal(raw, &rows); err != nil {
		var obj Row
		if json.Unmarshal(raw, &obj) == nil {
			if msg, ok := obj["looker_error"]; ok {
				return nil, fmt.Errorf("query failed: %s", bytes.TrimSpace(msg))
			}
		}
		return nil, fmt.Errorf("want a JSON array of rows: %w", err)
	}
	for _, r := range rows {
		if r == nil {
			return nil, errors.New("want a JSON array of rows: found null")
		}
		if msg, ok := r["looker_error"]; ok {
			return nil, fmt.Errorf("query failed: %s", bytes.TrimSpace(msg))
		}
	}
	return rows, nil
}

// RunOnce runs a scheduled plan now (operation scheduled_plan_run_once_by_id):
// Looker copies the plan into a new run-once plan, runs the copy and answers
// with it. It is not idempotent: each successful call delivers once more. The
// request goes through the WithRunOnceHTTPClient client.
func (c *Client) RunOnce(ctx context.Context, planID string) (ScheduledPlan, error) {
	var p ScheduledPlan
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
