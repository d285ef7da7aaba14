package lookertest

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/looker-rerun/looker-rerun/looker"
)

// This file orders a query's rows by its sorts, as Looker's SQL would.

// sortRows sorts as Looker does: by the query's sorts, or by default on the
// first time field descending, else the first field ascending.
func sortRows(rows []map[string]any, q looker.Query) error {
	sorts := q.Sorts
	if len(sorts) == 0 {
		sorts = []string{q.Fields[0]}
		for _, name := range q.Fields {
			if fields[name].kind == "time" {
				sorts = []string{name + " desc"}
				break
			}
		}
	}
	type key struct {
		name string
		desc bool
		kind string
	}
	var keys []key
	for _, s := range sorts {
		name, dir, _ := strings.Cut(strings.TrimSpace(s), " ")
		if !slices.Contains(q.Fields, name) {
			return fmt.Errorf("sort on %q, which is not a selected field", name)
		}
		keys = append(keys, key{name, strings.HasPrefix(strings.TrimSpace(dir), "desc"), fields[name].kind})
	}
	slices.SortStableFunc(rows, func(a, b map[string]any) int {
		for _, k := range keys {
			c := compare(k.kind, a[k.name], b[k.name])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	return nil
}

func compare(kind string, a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	if kind == "number" {
		x, _ := strconv.ParseFloat(fmt.Sprint(a), 64)
		y, _ := strconv.ParseFloat(fmt.Sprint(b), 64)
		return cmp.Compare(x, y)
	}
	return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b))
}
