package lookertest

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds what decides what a plan delivers (its filters and
// destinations), how a person changes it (EditPlan) and how a person sends
// it ad hoc (SendNow).

// Destination is where a plan delivers: one of Looker's
// ScheduledPlanDestination.
type Destination struct {
	// Type is "email", "webhook", "s3", "sftp" or an action's, such as
	// "looker-integration" for Slack. Empty, it is inferred from Address:
	// http:// or https:// is a webhook, an address with "@" an email, any
	// other an action's ("looker-integration").
	Type string
	// Format is the data format sent, such as "csv" or "wysiwyg_pdf".
	// Empty, it is "csv" for a Look and "wysiwyg_pdf" for a dashboard.
	Format  string
	Address string
	// Parameters is the destination's JSON settings, as an action keeps
	// them: Slack through the Action Hub keeps the channel here, its
	// address the same for every channel. Empty: null.
	Parameters string
}

// dest is a destination as the table keeps it: with its type and format
// filled in, and the id Looker gave it.
type dest struct {
	id string
	Destination
}

// destinationAddresses is System Activity's scheduled_plan.destination_addresses:
// Destinations as given, or Dests' addresses joined with "," when Dests is set.
func (p *Plan) destinationAddresses() string {
	if len(p.Dests) == 0 {
		return p.Destinations
	}
	addrs := make([]string, len(p.Dests))
	for i, d := range p.Dests {
		addrs[i] = d.Address
	}
	return strings.Join(addrs, ",")
}

// resolveDests sets p's destinations from Dests, or from Destinations when
// Dests is empty (one per address), with types and formats filled in. A
// destination equal to one of old keeps that one's id, as Looker keeps a
// destination an edit leaves alone; the others get new ids.
func (t *table) resolveDests(p *Plan, old []dest) {
	p.Dests = slices.Clone(p.Dests) // the test's slice stays the test's
	defs := p.Dests
	if len(defs) == 0 {
		for _, a := range strings.Split(p.Destinations, ",") {
			if a = strings.TrimSpace(a); a != "" {
				defs = append(defs, Destination{Address: a})
			}
		}
	}
	used := make([]bool, len(old))
	p.dests = make([]dest, 0, len(defs))
	for _, d := range defs {
		if d.Type == "" {
			d.Type = destinationType(d.Address)
		}
		if d.Format == "" {
			d.Format = "wysiwyg_pdf"
			if strings.HasPrefix(p.ContentTypeID, "look::") {
				d.Format = "csv"
			}
		}
		id := ""
		for i, o := range old {
			if !used[i] && o.Destination == d {
				used[i], id = true, o.id
				break
			}
		}
		if id == "" {
			t.nextDest++
			id = strconv.Itoa(t.nextDest)
		}
		p.dests = append(p.dests, dest{id, d})
	}
}

// destinationType infers a destination's type from its address. A URL is
// a webhook even when its user info holds an "@".
func destinationType(addr string) string {
	switch {
	case strings.HasPrefix(addr, "http://"), strings.HasPrefix(addr, "https://"):
		return "webhook"
	case strings.Contains(addr, "@"):
		return "email"
	}
	return "looker-integration"
}

// destinationsJSON renders p's destinations as Looker's
// scheduled_plan_destination. A recipient is a Looker user when it is the
// owner's email: the only user the fake knows.
func (p *Plan) destinationsJSON() []map[string]any {
	out := make([]map[string]any, 0, len(p.dests))
	for _, d := range p.dests {
		out = append(out, map[string]any{
			"id": d.id, "scheduled_plan_id": p.ID, "type": d.Type, "format": d.Format, "address": orNull(d.Address),
			"apply_formatting": false, "apply_vis": false,
			"looker_recipient": d.Type == "email" && p.OwnerEmail != "" && strings.EqualFold(d.Address, p.OwnerEmail),
			"parameters":       orNull(d.Parameters), "message": nil,
		})
	}
	return out
}

// copyDests is what a run-once copy of p delivers to: p's destinations, in
// reverse order unless KeepCopyOrder says otherwise.
func (t *table) copyDests(p *Plan) []Destination {
	out := make([]Destination, len(p.dests))
	for i, d := range p.dests {
		out[i] = d.Destination
	}
	if !t.keepCopyOrder {
		slices.Reverse(out)
	}
	return out
}

// KeepCopyOrder makes run_once copies list their destinations in the
// original's order (keep true). By default a copy lists them in reverse, in
// its API answer and in System Activity's destination_addresses: Looker
// does not promise to keep the order, and a client must not count on it.
func (s *Server) KeepCopyOrder(keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.keepCopyOrder = keep
}

// EditPlan changes plan id as a person editing the schedule in Looker's UI
// does: edit gets the plan as it stands and may change its definition
// (name, owner, content, filters, destinations, Disabled...), though not its
// ID. The plan's updated_at becomes the fake's now (SetClock). Its jobs show
// the edit from then on; copies already made keep what they copied, later
// ones carry the edit. A destination the edit leaves alone keeps its id.
// edit runs with the server's lock held: it must not call the Server.
// EditPlan panics for a plan the fake does not have.
func (s *Server) EditPlan(id string, edit func(*Plan)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.editPlan(id, edit) {
		panic("lookertest: EditPlan of unknown plan " + id)
	}
}

// editPlan is EditPlan; it reports false for a plan the fake does not have.
func (s *Server) editPlan(id string, edit func(*Plan)) bool {
	p, ok := s.table.plans[id]
	if !ok {
		return false
	}
	e := *p
	edit(&e)
	e.ID, e.updated = id, s.now()
	s.table.resolveDests(&e, p.dests)
	*p = e
	return true
}

// SendNow does what a person's "Send now" in Looker's UI does (operation
// scheduled_plan_run_once): Looker makes a new run-once plan with p's
// definition (owner, content, name, filters, destinations), created at the
// fake's now, and runs its job at once. The job ends as outcome says
// (Outcome.After, or no Status to run until FinishJob), with success when
// it is left out; it panics given more than one. Like a copy, the plan and
// its job lag in System Activity (SetActivityLag). Looker gives the plan a
// new id whatever p.ID says; its Created, Visible, RunOnce and Disabled are
// Looker's too. It is not a copy: Reruns and Copies do not count it.
func (s *Server) SendNow(p Plan, outcome ...Outcome) Plan {
	if len(outcome) > 1 {
		panic("lookertest: SendNow takes at most one Outcome")
	}
	o := Outcome{Status: "success"}
	if len(outcome) == 1 {
		o = outcome[0]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.ID, p.Disabled, p.updated, p.deleted = "", false, time.Time{}, false
	s.table.fill(&p)
	s.table.launch(&p, s.now(), s.lag.draw, o)
	return p
}
