package looker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// accessToken is Looker's AccessToken answer to login.
type accessToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// Login presents the API key (operation login) and keeps the access token for
// later calls. The client id and secret travel form-encoded in the body, never
// in the URL. Calls made before Login log in by themselves.
func (c *Client) Login(ctx context.Context) error {
	if err := c.relogin(ctx, c.currentToken()); err != nil {
		return fmt.Errorf("looker: %w", err)
	}
	return nil
}

// relogin logs in unless another goroutine already replaced stale, so a burst
// of 401s from concurrent calls causes one login, not one each. Its errors
// start "login:", for the exported method that called it to prefix.
func (c *Client) relogin(ctx context.Context, stale string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != stale {
		return nil
	}
	if c.clientID == "" {
		return errors.New("login: no credentials configured")
	}
	form := url.Values{"client_id": {c.clientID}, "client_secret": {c.clientSecret}}
	req, err := c.newRequest(ctx, http.MethodPost, "login", nil, form)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	var tok accessToken
	if err := c.send(c.hc, req, &tok, false); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if tok.AccessToken == "" {
		return errors.New("login: the answer has no access_token")
	}
	c.token = tok.AccessToken
	return nil
}

// Logout revokes the access token (operation logout). It does nothing when the
// client is not logged in. The token is forgotten even when the call fails.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	token := c.token
	c.token = ""
	c.mu.Unlock()
	if token == "" {
		return nil
	}
	req, err := c.newRequest(ctx, http.MethodDelete, "logout", nil, nil)
	if err != nil {
		return fmt.Errorf("looker: logout: %w", err)
	}
	if err := c.send(c.hc, withToken(req, token), nil, true); err != nil {
		return fmt.Errorf("looker: logout: %w", err)
	}
	return nil
}
