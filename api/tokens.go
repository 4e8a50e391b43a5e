package api

import "time"

// NewToken is an API token just minted, shown this once: the output of
// `pairgate tokens create --json`. Only its hash is stored.
type NewToken struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Scope string `json:"scope"` // admin or gateway
	Token string `json:"token"`
}

// Token is an API token as operators see it: never the token itself.
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scope     string     `json:"scope"` // admin or gateway
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// TokenList is the output of `pairgate tokens list --json`.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// WebLink is the answer of `pairgate web-link --json`: a single-use sign-in
// link for the web page. The URL carries the link's secret; it is shown
// this once.
type WebLink struct {
	URL       string    `json:"url"`
	URLSource string    `json:"url_source"` // flag, config, env, tunnel_file or listen
	ExpiresAt time.Time `json:"expires_at"`
}
