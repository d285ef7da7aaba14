package rerun

import "time"

// SetPacerClock lets tests move the pacer's clock.
func SetPacerClock(p *Pacer, now func() time.Time) { p.now = now }
