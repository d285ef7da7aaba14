package looker

import (
	"bytes"
	"time"
)

// DecodeRows decodes a whole json result, as RunLook and RunInlineQuery do:
// for the tests of the row decoder.
func DecodeRows(raw []byte) ([]Row, error) {
	var rows []Row
	err := rowSink(func(r Row) error { rows = append(rows, r); return nil }).decode(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// SetRunOnceClock lets tests move the clock of the RunOnce pace.
func SetRunOnceClock(c *Client, now func() time.Time) { c.pacer.now = now }
