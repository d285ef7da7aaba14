package rerun

import (
	"slices"
	"sync"
)

// claims is the run's own record of copies, kept in memory (System Activity
// is the record of what was done; this is what the run has made of it): the
// copies System Activity showed when the run began, and which plan each
// claimed copy belongs to. A copy is claimed
// once: by the plan whose run_once answer named it, by the plan whose lost
// answer it proves, or by the plan the books shared it out to. It is safe
// for concurrent use.
type claims struct {
	mu      sync.Mutex
	known   map[string]bool   // copy ids listed before this run re-ran anything
	claimed map[string]string // copy id -> plan id
}

func newClaims(copies []job) *claims {
	l := &claims{known: map[string]bool{}, claimed: map[string]string{}}
	for _, c := range copies {
		l.known[c.PlanID] = true
	}
	return l
}

// holder returns the plan (or the mark) a copy is claimed by.
func (l *claims) holder(id string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	holder, ok := l.claimed[id]
	return holder, ok
}

// claim gives copy id to plan planID; it reports false when another plan has
// it already.
func (l *claims) claim(id, planID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if holder, ok := l.claimed[id]; ok && holder != planID {
		return false
	}
	l.claimed[id] = planID
	return true
}

// fresh returns the copies of p's content (whatever their owner and
// destinations: the plan may have been edited since it was listed), made at
// or after its latest failure, that the run had not listed when it began and
// no plan has claimed, oldest first: after a lost answer, those that may
// prove p's call was acted on, once their definitions agree with p's.
func (l *claims) fresh(p *plan, copies []job) []job {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []job
	for _, c := range copies {
		if _, taken := l.claimed[c.PlanID]; c.RunOnce && c.Content == p.Key.content && c.PlanID != p.ID &&
			cmpMark(c.madeMark(), p.lastFailure) >= 0 && !l.known[c.PlanID] && !taken {
			found = append(found, c)
		}
	}
	slices.SortFunc(found, byMade)
	return found
}
