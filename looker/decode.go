package looker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// This file reads Looker's answers: JSON bodies whole or row by row, within
// size caps, and never an HTML page taken for data.

const (
	// maxErrorBody caps how much of an error response is read for its message.
	maxErrorBody = 64 << 10
	// maxBody caps a successful response. A 5,000-row System Activity result
	// is a few MiB; anything near this cap is not the JSON we asked for.
	maxBody = 64 << 20
	// snippetLen is how much of a malformed answer an error quotes.
	snippetLen = 120
)

// decodeJSON decodes a 2xx answer, refusing HTML error pages from proxies and
// load balancers that answer 200 in Looker's place. A rowSink is fed row by
// row as the body streams in; anything else is decoded whole. Unless quote is
// set, an error says nothing of the body but its size, not even the decoder's
// message, which can quote a number or a character of it.
func decodeJSON(req *http.Request, resp *http.Response, v any, quote bool) error {
	where := req.Method + " " + req.URL.Path
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		if !quote {
			n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			return fmt.Errorf("%s: want a JSON response, got %s%s", where, mt, withheld(int(n), n == maxErrorBody))
		}
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: want a JSON response, got %s: %s", where, mt, quoted(req, head, snippetLen))
	}
	body := &capped{r: io.LimitReader(resp.Body, maxBody+1)}
	var err error
	if sink, ok := v.(rowSink); ok {
		err = sink.decode(body)
	} else {
		var b []byte
		if b, err = io.ReadAll(body); err == nil {
			if err = json.Unmarshal(b, v); err != nil {
				err = fmt.Errorf("decode response: %w", err)
			}
		}
	}
	switch {
	case body.n > maxBody:
		return fmt.Errorf("%s: response larger than %d bytes", where, maxBody)
	case err != nil && !quote:
		return fmt.Errorf("%s: the response is not the JSON expected%s", where, withheld(body.n, false))
	case err != nil:
		return fmt.Errorf("%s: %w: %s", where, err, quoted(req, body.head, snippetLen))
	}
	return nil
}

// capped counts what is read through it and keeps the first bytes, to quote
// in an error.
type capped struct {
	r    io.Reader
	n    int
	head []byte
}

func (c *capped) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	if keep := snippetLen - len(c.head); keep > 0 {
		c.head = append(c.head, p[:min(n, keep)]...)
	}
	return n, err
}

// withheld stands in an error message for a body that must not be quoted:
// its size only. cut says reading stopped at a cap, so there may be more.
func withheld(n int, cut bool) string {
	if cut {
		return fmt.Sprintf(" (%d bytes or more, not shown)", n)
	}
	return fmt.Sprintf(" (%d bytes, not shown)", n)
}

// quoted quotes the start of a body for an error message: at most n bytes,
// without the access token req carried. A proxy's or firewall's page may
// echo the request's headers, and a quote cut short may end in the start of
// the token, so both are cut out.
func quoted(req *http.Request, b []byte, n int) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	more := len(s) > n
	if more {
		s = s[:n]
	}
	s = hide(s, sentToken(req))
	if more {
		s += "..."
	}
	return fmt.Sprintf("%q", s)
}

// hide replaces secret in s wherever it appears whole, and its start where s
// ends in four or more of its first characters.
func hide(s, secret string) string {
	if secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, "REDACTED")
	for n := min(len(secret)-1, len(s)); n >= 4; n-- {
		if strings.HasSuffix(s, secret[:n]) {
			return s[:len(s)-n] + "REDACTED"
		}
	}
	return s
}

// sentToken is the access token req carries, if any.
func sentToken(req *http.Request) string {
	return strings.TrimPrefix(req.Header.Get("Authorization"), "token ")
}

// kind names the kind of a JSON value from its first token without quoting
// it: a string could be anything, of any length.
func kind(tok json.Token) string {
	switch tok.(type) {
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%v", tok)
}

// rowSink receives the rows of a json result one by one.
type rowSink func(Row) error

// decode reads a json result: an array of objects. A query that fails in the
// database still answers 200, with the error as a row (or an object) holding
// looker_error; that is an error, and so is null or anything but rows: never
// read as "no rows".
func (sink rowSink) decode(r io.Reader) error {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	switch {
	case errors.Is(err, io.EOF) || (err == nil && tok == nil):
		return errors.New("want a JSON array of rows, got null or nothing")
	case err != nil:
		return fmt.Errorf("decode response: %w", err)
	case tok == json.Delim('{'):
		obj := Row{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return fmt.Errorf("decode response: %w", err)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return fmt.Errorf("decode response: %w", err)
			}
			if k, ok := key.(string); ok {
				obj[k] = v
			}
		}
		if msg, ok := obj["looker_error"]; ok {
			return fmt.Errorf("query failed: %s", bytes.TrimSpace(msg))
		}
		return errors.New("want a JSON array of rows, got an object")
	case tok != json.Delim('['):
		return fmt.Errorf("want a JSON array of rows, got %s", kind(tok))
	}
	for i := 1; dec.More(); i++ {
		var row Row
		if err := dec.Decode(&row); err != nil {
			return fmt.Errorf("decode response: row %d: %w", i, err)
		}
		if row == nil {
			return errors.New("want a JSON array of rows: found null")
		}
		if msg, ok := row["looker_error"]; ok {
			return fmt.Errorf("query failed: %s", bytes.TrimSpace(msg))
		}
		if err := sink(row); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return fmt.Errorf("decode response: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("decode response: data after the rows")
	}
	return nil
}
