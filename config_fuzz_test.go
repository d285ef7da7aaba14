package main

import (
	"strings"
	"testing"
	"time"
)

// FuzzValidate feeds arbitrary values to every setting that validate reads:
// it must never panic, and a config it accepts must describe a real window.
func FuzzValidate(f *testing.F) {
	f.Add("https://example.looker.com", "id", "secret", "4.0", 120, "", "", int64(10*time.Hour), "", 4, 5.0, "/airflow/xcom/return.json", "info", "json")
	f.Add("https://x/api/4.0", "id", "s", "4.0", 1, "2026-11-27T15:00:00Z", "2026-11-28T01:00:00Z", int64(time.Hour), "12", 1, 0.0, "r", "debug", "console")
	f.Add("http://[::1", "", "", "3.1", 0, "2026-11-28T01:00:00+09:00", "2026-11-27T15:00:00Z", int64(-1), "x", 0, -1.0, "", "", "xml")
	f.Add("https://x", "id", "s", "4.0", 5, "2026-02-30T00:00:00Z", "9999-12-31T23:59:59Z", int64(1), "0", 64, 1e308, "f", "TRACE", "json")
	f.Fuzz(func(t *testing.T, base, id, secret, api string, timeoutSec int, since, until string, lookback int64,
		lookID string, conc int, rate float64, resultFile, level, format string) {
		c := Config{
			BaseURL: base, ClientID: id, ClientSecret: secret, APIVersion: api, TimeoutSec: timeoutSec,
			Since: since, Until: until, Lookback: time.Duration(lookback), LookID: lookID,
			Concurrency: conc, Rate: rate, ResultFile: resultFile, LogLevel: level, LogFormat: format,
		}
		now := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
		other := c
		err := c.check(now)
		if err != nil {
			// The secret must not be printed: the error shows it no more
			// often than the error for another secret does.
			const stand = "<another secret>"
			if len(secret) >= 4 && !strings.Contains(stand, secret) {
				other.ClientSecret = stand
				if otherErr := other.check(now); otherErr == nil || strings.Count(err.Error(), secret) > strings.Count(otherErr.Error(), secret) {
					t.Errorf("error shows the secret %q: %v", secret, err)
				}
			}
			return
		}
		if !c.since.Before(c.until) {
			t.Errorf("accepted an empty window %s..%s", c.since, c.until)
		}
		if c.since.Location() != time.UTC || c.until.Location() != time.UTC {
			t.Errorf("window not in UTC")
		}
		if c.Concurrency < 1 || c.Rate < 0 || c.timeout <= 0 || c.timeout > time.Hour {
			t.Errorf("accepted concurrency %d rate %v timeout %s", c.Concurrency, c.Rate, c.timeout)
		}
	})
}
