package lookertest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLagsComeFromTheSeed(t *testing.T) {
	t.Parallel()
	draws := func(seed int64) []time.Duration {
		s := New()
		if seed != defaultSeed {
			s.SetSeed(seed)
		}
		s.SetActivityLag(time.Second, 3*time.Second)
		var out []time.Duration
		for range 20 {
			d := s.lag.draw()
			if d < time.Second || d > 3*time.Second {
				t.Fatalf("seed %d: lag %v outside [1s, 3s]", seed, d)
			}
			out = append(out, d)
		}
		return out
	}
	if diff := cmp.Diff(draws(defaultSeed), draws(defaultSeed)); diff != "" {
		t.Errorf("the default seed drew different lags (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(draws(7), draws(7)); diff != "" {
		t.Errorf("seed 7 drew different lags (-first +second):\n%s", diff)
	}
	if cmp.Equal(draws(7), draws(8)) {
		t.Errorf("seeds 7 and 8 drew the same lags")
	}
	if d := New().lag.draw(); d != 0 {
		t.Errorf("a new fake lags %v, want none", d)
	}
}

func TestSetActivityLagRefusesABackwardRange(t *testing.T) {
	t.Parallel()
	for _, r := range [][2]time.Duration{{-time.Second, time.Second}, {2 * time.Second, time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetActivityLag(%v, %v) did not panic", r[0], r[1])
				}
			}()
			New().SetActivityLag(r[0], r[1])
		}()
	}
}
