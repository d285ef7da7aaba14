package rerun_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/looker-rerun/looker-rerun/rerun"
)

func TestPacer(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	p := rerun.NewPacer(4, time.Minute, zerolog.Nop())
	rerun.SetPacerClock(p, func() time.Time { return clock })
	var rates []float64
	for range 6 {
		p.Throttled(0)
		p.Throttled(0) // the same burst: counted once
		rates = append(rates, p.Rate())
		clock = clock.Add(time.Second)
	}
	if diff := cmp.Diff([]float64{2, 1, 0.5, 0.5, 0.5, 0.5}, rates); diff != "" {
		t.Errorf("rates after each burst of 429s (-want +got):\n%s", diff)
	}
	// Quiet for long enough, it climbs back to the configured rate, no further.
	for range 5 {
		clock = clock.Add(11 * time.Second)
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if p.Rate() != 4 {
		t.Errorf("after a quiet minute the rate is %v, want 4", p.Rate())
	}

	uncapped := rerun.NewPacer(0, time.Minute, zerolog.Nop())
	uncapped.Throttled(time.Second)
	if !math.IsInf(uncapped.Rate(), 1) {
		t.Errorf("an uncapped pacer after a 429 runs at %v, want it to pause, not cap", uncapped.Rate())
	}
	var none *rerun.Pacer
	if err := none.Wait(context.Background()); err != nil {
		t.Errorf("nil pacer: %v", err)
	}
}

func TestPacerPausesEveryWorkerAfterA429(t *testing.T) {
	t.Parallel()
	p := rerun.NewPacer(0, 50*time.Millisecond, zerolog.Nop())
	p.Throttled(time.Hour) // capped at 50ms
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait during the pause = %v, want it to block", err)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Errorf("Wait after the pause: %v", err)
	}
}
