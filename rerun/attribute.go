package rerun

import (
	"context"
	"maps"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
)

// This file tells which run-once copies deliver what the plans deliver, and
// keeps the books on them. It looks only where a copy is alike to a plan on
// System Activity's fields (owner, content, destination addresses): then it
// lists every scheduled plan alike to it (look-alikes outside the window may
// own the copy), reads their deliveries since the window before this one,
// and reads the definitions of those plans and copies. A failed copy in the
// window is a failed delivery of its plan there: that plan is decided too.

// attribute gathers the plans of ids from jobs, attributes the copies to
// them, and keeps the books. It returns the plans (by id) and the ids of
// those to decide.
func attribute(ctx context.Context, sa *activity, defs *definitions, opts Options, w span,
	ids []string, jobs, copies []job, b *books, l *claims) (map[string]*plan, []string, error) {
	plans := gather(ids, opts.Since, opts.Until, jobs)
	// Copies by content: whatever else a copy shows on System Activity
	// (owner, addresses) may have been edited since, and its definition
	// decides.
	alike := map[string][]job{}
	for _, c := range copies {
		if c.RunOnce {
			alike[c.Content] = append(alike[c.Content], c)
		}
	}
	need := needed(plans, alike, opts)
	if len(need) == 0 {
		return plans, ids, nil
	}
	contents := slices.Sorted(maps.Keys(need))
	var likes, earlier []job
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { likes, err = sa.plansOf(gctx, contents); return err })
	g.Go(func() (err error) { earlier, err = sa.copiesOf(gctx, contents, w.back, w.from); return err })
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	listed := map[string]bool{}
	for _, c := range copies {
		listed[c.PlanID+"/"+c.JobID] = true
	}
	for _, c := range earlier {
		if !listed[c.PlanID+"/"+c.JobID] { // the two lists may meet on a second
			alike[c.Content] = append(alike[c.Content], c)
		}
	}
	members := map[string][]string{}
	var more []string
	for _, j := range likes {
		members[j.Content] = append(members[j.Content], j.PlanID)
		more = append(more, j.PlanID)
	}
	for _, p := range plans {
		if need[p.Key.content] && !slices.Contains(members[p.Key.content], p.ID) {
			members[p.Key.content] = append(members[p.Key.content], p.ID)
		}
	}
	// Their deliveries since lookBack: where they last delivered, and the
	// failures of look-alikes in other windows.
	older, err := sa.history(ctx, sortedSet(more), w.back)
	if err != nil {
		return nil, nil, err
	}
	plans = gather(sortedSet(slices.Concat(ids, more)), opts.Since, opts.Until, jobs, older, likes)
	if err := defs.load(ctx, toRead(members, plans, alike, opts)); err != nil {
		return nil, nil, err
	}

	decided := map[string]bool{}
	for _, id := range ids {
		decided[id] = true
	}
	for id, p := range plans {
		if p.Failures > 0 && !p.RunOnce {
			decided[id] = true // a failure System Activity showed only after the listing
		}
	}
	rl := opts.rules()
	for content, planIDs := range members {
		groups := byDefinition(planIDs, plans, defs)
		for _, group := range groups {
			same := copiesOf(group, alike[content], groups, defs, b)
			countCopyFailures(group, same, opts, decided)
			noteCopies(group, same, decided, b)
			b.keep(group, decided, same, rl, l)
		}
	}
	for id := range decided {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return plans, ids, nil
}

// needed returns the contents where a copy may matter: that of a failed copy
// in the window, or of a copy made since a decided plan's latest failure.
func needed(plans map[string]*plan, alike map[string][]job, opts Options) map[string]bool {
	need := map[string]bool{}
	for _, cs := range alike {
		for _, c := range cs {
			if c.Status == statusFailure && inWindow(c.Created, opts) {
				need[c.Content] = true
			}
		}
	}
	for _, p := range plans {
		for _, c := range alike[p.Key.content] {
			if p.Failures > 0 && mayFollow(c, p.lastFailure) {
				need[p.Key.content] = true
			}
		}
	}
	return need
}

// toRead lists the plans and copies whose definitions the books need: the
// plans of each content, and the copies that may matter to them: for a
// content scheduled once, those made since its latest failure or since it
// last delivered, and failed copies in the window; for one scheduled more
// than once (look-alikes, or schedules that differ), every copy read.
func toRead(members map[string][]string, plans map[string]*plan, alike map[string][]job, opts Options) []string {
	var read []string
	for content, ps := range members {
		read = append(read, ps...)
		for _, c := range alike[content] {
			if len(ps) > 1 || mayFollow(c, lowest(plans[ps[0]])) || (c.Status == statusFailure && inWindow(c.Created, opts)) {
				read = append(read, c.PlanID)
			}
		}
	}
	return read
}

// byDefinition groups plans by what they deliver, in order of their lowest
// id; a plan whose definition cannot be read is a group of its own.
func byDefinition(ids []string, plans map[string]*plan, defs *definitions) map[definition][]*plan {
	groups := map[definition][]*plan{}
	for _, id := range sortedSet(ids) {
		pd, _ := defs.get(id)
		d := pd.def
		if pd.err != nil {
			d = definition{content: "unreadable:" + id}
		}
		groups[d] = append(groups[d], plans[id])
	}
	return groups
}

// copiesOf returns the copies, oldest first, that deliver what group
// delivers, and records a doubt for each plan of the group about a copy
// that cannot be told apart from its re-run.
func copiesOf(group []*plan, copies []job, groups map[definition][]*plan, defs *definitions, b *books) []job {
	var same []job
	for _, c := range copies {
		cd, ok := defs.get(c.PlanID)
		if !ok {
			continue // made before anything it could be the re-run of
		}
		if other, ok := groups[cd.def]; ok && cd.err == nil && other[0] != group[0] {
			continue // it delivers what another plan alike delivers: that plan's
		}
		switch v, why := defs.judge(group[0], c); v {
		case sameReport:
			same = append(same, c)
		case unsure:
			for _, p := range group {
				if c.covers() && p.Failures > 0 && cmpMark(c.madeMark(), p.lastFailure) >= 0 {
					b.doubt(p.ID, ReasonUnsureCopy, why)
				}
			}
		}
	}
	slices.SortFunc(same, byMade)
	return same
}

// noteCopies records, for a plan no look-alike shares its copies with, the
// latest of its copies that delivered (where a chain of failed re-runs
// ends), and for each plan doubts about a copy that only times can order
// against its failure, one of them in the hour repeated when daylight
// saving ends.
func noteCopies(group []*plan, same []job, decided map[string]bool, b *books) {
	for _, p := range group {
		for _, c := range same {
			m := c.madeMark()
			if len(group) == 1 && c.Status == statusSuccess && cmpMark(m, p.lastCopySuccess) > 0 && cmpMark(m, p.lastFailure) < 0 {
				p.lastCopySuccess = m
			}
			if a := misreadable(m, p.lastFailure); a != "" && decided[p.ID] && p.Failures > 0 {
				b.doubt(p.ID, ReasonAmbiguousTime, "run-once copy "+c.PlanID+", not started yet, and the failure at "+
					p.LastFailure.Format(time.RFC3339)+" can only be ordered by their times, and one shows at "+a+
					", an hour the clocks show twice: whether the copy came after the failure cannot be told; check it in Looker")
			}
		}
	}
}

func sortedSet(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// countCopyFailures counts each failed copy of the group that ran in the
// window as a failed delivery of the plan it was most likely made for: among
// those whose latest own failure came before it, the one with fewest so far.
// That plan is decided too.
func countCopyFailures(group []*plan, same []job, opts Options, decided map[string]bool) {
	counted := map[string]int{}
	for _, c := range same {
		if c.Status != statusFailure || !inWindow(c.Created, opts) {
			continue
		}
		// A plan whose own failure came before the copy is likelier its
		// source; then the one with fewest so far; then the lowest id.
		before := func(p *plan) bool { return p.open() && cmpMark(p.lastOwnFailure, c.madeMark()) <= 0 }
		var to *plan
		for _, p := range group {
			switch {
			case p.RunOnce:
			case to == nil, before(p) && !before(to):
				to = p
			case before(p) == before(to) && counted[p.ID] < counted[to.ID]:
				to = p
			}
		}
		if to == nil {
			continue
		}
		counted[to.ID]++
		to.addFailure(job{JobID: c.JobID, Created: c.Created, Detail: c.Detail, Status: statusFailure})
		decided[to.ID] = true
	}
}

// lowest is the earliest a copy can matter to p: since it last delivered
// (its failed re-runs count toward the cap); zero, every copy read, when
// the run read no delivery of it.
func lowest(p *plan) mark {
	low := chainStart(p)
	if !low.IsZero() && cmpMark(low, p.lastFailure) > 0 {
		return p.lastFailure // it delivered since: only a later failure's copies matter
	}
	return low
}

// mayFollow reports whether copy c may have been made at or after t: it was,
// or it shows in the repeated hour near t, where its order cannot be read.
func mayFollow(c job, t mark) bool {
	return cmpMark(c.madeMark(), t) >= 0 || misreadable(c.madeMark(), t) != ""
}

func inWindow(t time.Time, opts Options) bool {
	return !t.Before(opts.Since) && t.Before(opts.Until)
}
