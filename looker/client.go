// Package looker is a client for the few Looker API 4.0 operations that
// looker-rerun needs: login and logout, running a saved Look or an inline
// query, and running a scheduled plan once. It also owns what is known about
// repeating those calls (retry.go): which answers mean Looker did not act,
// how long to back off, what a Retry-After may cost.
//
// It imports only the standard library and golang.org/x/time/rate (which
// paces RunOnce, pace.go), and never reads the environment, logs or exits.
// It does not retry by itself: the caller passes an
// *http.Client whose transport retries (for example go-retryablehttp's
// StandardClient with RetrySafe and Backoff) with WithHTTPClient, and a more
// careful one (RetryRunOnce) for the non-idempotent run_once call with
// WithRunOnceHTTPClient. Its errors name no setting: the caller, which
// knows where a value came from, says what to change (ErrURLCredentials).
package looker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// APIVersion is the only Looker API version this client speaks. API 3.0 and
// 3.1 were removed in Looker 23.18.
const APIVersion = "4.0"

// Client talks to one Looker instance. It is safe for concurrent use: one
// login serves every call, and a call answered with 401 logs in again once
// and is sent again.
type Client struct {
	base      *url.URL // ends in /api/4.0/
	hc        *http.Client
	runOnceHC *http.Client
	userAgent string

	clientID, clientSecret string

	// pacer spaces the RunOnce calls (nil: no cap); onThrottle hears of
	// each 429 that slowed them.
	pacer      *pacer
	onThrottle func(Throttle)
	clock      Clock // WithClock's, for the pacer; nil: the wall clock

	mu    sync.Mutex
	token string
}

// An Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sets the client used for every call except run_once. It
// should retry what is safe to repeat; the default is http.DefaultClient.
// Redirects are never followed, whatever hc's CheckRedirect: the Client uses
// a copy of hc whose CheckRedirect returns the redirect as an *Error.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("nil http client")
		}
		c.hc = hc
		return nil
	}
}

// WithRunOnceHTTPClient sets the client used for scheduled_plan_run_once_by_id,
// which is not idempotent: its transport must repeat a request only when
// Looker certainly did not act on it. The default is the WithHTTPClient one.
// Redirects are not followed, as with WithHTTPClient.
func WithRunOnceHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("nil run_once http client")
		}
		c.runOnceHC = hc
		return nil
	}
}

// WithCredentials sets the API key that Login presents.
func WithCredentials(clientID, clientSecret string) Option {
	return func(c *Client) error {
		if clientID == "" || clientSecret == "" {
			return errors.New("empty client id or client secret")
		}
		c.clientID, c.clientSecret = clientID, clientSecret
		return nil
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if strings.TrimSpace(ua) == "" {
			return errors.New("empty user agent")
		}
		c.userAgent = ua
		return nil
	}
}

// NewClient returns a client for the Looker instance at baseURL, given with or
// without the /api/4.0 suffix and trailing slash
// (https://example.looker.com, https://example.looker.com:19999/api/4.0/).
func NewClient(baseURL string, opts ...Option) (*Client, error) {
	base, err := NormalizeBaseURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("looker: %w", err)
	}
	c := &Client{base: base, hc: http.DefaultClient, userAgent: "looker-rerun"}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("looker: %w", err)
		}
	}
	if c.runOnceHC == nil {
		c.runOnceHC = c.hc
	}
	if c.pacer != nil && c.clock != nil {
		c.pacer.now, c.pacer.after = c.clock.Now, c.clock.After
	}
	c.hc, c.runOnceHC = noRedirects(c.hc), noRedirects(c.runOnceHC)
	return c, nil
}

// noRedirects returns a copy of hc that returns a redirect as the answer
// instead of following it. Go resends the body on a 307 or 308, to any host
// and over plain HTTP: the login form, client secret and all. It keeps the
// Authorization header on a redirect to the same host, even from https to
// http. And on a 301, 302 or 303 it turns a POST into a GET, which for
// run_once would be read as Looker's answer.
func noRedirects(hc *http.Client) *http.Client {
	cp := *hc
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// BaseURL returns the API root every request is sent under.
func (c *Client) BaseURL() string { return c.base.String() }

// newRequest builds a request for path (relative to /api/4.0/) with query
// parameters q and, when body is not nil, a body: url.Values are sent
// form-encoded, anything else as JSON. The body can be read again (GetBody),
// so the request can be resent after a new login.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	u := c.base.JoinPath(path)
	u.RawQuery = q.Encode()
	var (
		r           io.Reader
		contentType string
	)
	switch b := body.(type) {
	case nil:
	case url.Values:
		r, contentType = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		r, contentType = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

// do sends req with hc, authenticated with the current token, and decodes a
// JSON answer into v (unless v is nil). A 401 is answered by one new login and
// one resend. Any other non-2xx status is returned as *Error.
func (c *Client) do(hc *http.Client, req *http.Request, v any) error {
	token := c.currentToken()
	if token == "" {
		if err := c.relogin(req.Context(), ""); err != nil {
			return err
		}
		token = c.currentToken()
	}
	err := c.send(hc, withToken(req, token), v, true)
	var lerr *Error
	if !errors.As(err, &lerr) || lerr.StatusCode != http.StatusUnauthorized {
		return err
	}
	if err := c.relogin(req.Context(), token); err != nil {
		return err
	}
	// The new login may have taken its own retries: a call held to a start
	// check (WithStartCheck) asks it again before it is sent again.
	if err := mayStart(req.Context()); err != nil {
		return err
	}
	again := req.Clone(req.Context())
	if req.GetBody != nil {
		if again.Body, err = req.GetBody(); err != nil {
			return err
		}
	}
	return c.send(hc, withToken(again, c.currentToken()), v, true)
}

func withToken(req *http.Request, token string) *http.Request {
	req.Header.Set("Authorization", "token "+token)
	return req
}

// send sends req as it is and decodes the answer. quote says whether the
// body of an error or a malformed answer may be quoted in the error: never
// for login, whose answer carries the access token, or may echo the client
// secret when it comes from a page in front of Looker.
func (c *Client) send(hc *http.Client, req *http.Request, v any, quote bool) error {
	resp, err := hc.Do(req)
	if err != nil {
		// The URL in a *url.Error carries no secret: credentials travel in
		// bodies and headers only.
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newError(req, resp, quote)
	}
	if v == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	return decodeJSON(req, resp, v, quote)
}

func (c *Client) currentToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}
