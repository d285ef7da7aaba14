package lookertest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
)

// auth is the API key the fake accepts and the access tokens it has handed
// out. Server.mu guards it.
type auth struct {
	clientID, secret string
	tokens           map[string]bool // live access tokens
	issued           []string        // every token handed out, live or not
}

// ExpireTokens revokes every access token, as their expiry would.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.auth.tokens)
}

// LiveTokens returns how many access tokens are still valid (not logged out).
func (s *Server) LiveTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.auth.tokens)
}

// Issued returns every access token the fake has handed out.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auth.issued)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) int {
	if err := r.ParseForm(); err != nil {
		return writeError(w, http.StatusBadRequest, "Bad request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Form.Get("client_id") != s.auth.clientID || r.Form.Get("client_secret") != s.auth.secret {
		// Looker answers bad credentials with 404, not 401.
		return writeError(w, http.StatusNotFound, "Not found")
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"access_token": s.auth.issueToken(), "token_type": "Bearer", "expires_in": 3600, "refresh_token": nil,
	})
}

func (s *Server) logout(w http.ResponseWriter, token string) int {
	s.mu.Lock()
	delete(s.auth.tokens, token)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// authorized accepts "Authorization: token T" (and "Bearer T", as Looker does).
func (s *Server) authorized(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || (!strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "bearer")) {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return token, s.auth.tokens[token]
}

func (a *auth) issueToken() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	a.tokens[tok] = true
	a.issued = append(a.issued, tok)
	return tok
}
