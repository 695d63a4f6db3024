package profiling

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Per-agent tokens: instead of sharing one agent token across every host,
// each agent can get its own. A per-agent token is bound to its agent's
// name (it can register, poll and upload only as that agent), and revoking
// it cuts off that host alone. The store keeps the token's SHA-256 only.

// AgentToken describes an issued per-agent token (never the token itself).
type AgentToken struct {
	Agent   string    `json:"agent"`
	Created time.Time `json:"created"`
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// IssueAgentToken creates (or replaces) the token of agent and returns it;
// it is not stored and cannot be shown again.
func (d *DB) IssueAgentToken(ctx context.Context, agent string) (string, error) {
	if !targetName.MatchString(agent) {
		return "", fmt.Errorf("agent name %q: want letters, digits, '_', '.', '-'", agent)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := "sat_" + base64.RawURLEncoding.EncodeToString(b)
	_, err := d.S.Exec(ctx, `INSERT INTO profiling_agent_tokens (agent, token_hash, created_ms) VALUES (?, ?, ?)
		ON CONFLICT (agent) DO UPDATE SET token_hash = excluded.token_hash, created_ms = excluded.created_ms`,
		agent, hashToken(tok), time.Now().UnixMilli())
	if err != nil {
		return "", fmt.Errorf("issue agent token: %w", err)
	}
	return tok, nil
}

// RevokeAgentToken deletes the token of agent.
func (d *DB) RevokeAgentToken(ctx context.Context, agent string) error {
	res, err := d.S.Exec(ctx, "DELETE FROM profiling_agent_tokens WHERE agent = ?", agent)
	if err != nil {
		return fmt.Errorf("revoke agent token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("agent token of %q: %w", agent, ErrNotFound)
	}
	return nil
}

// AgentTokens lists the agents that have a token.
func (d *DB) AgentTokens(ctx context.Context) ([]AgentToken, error) {
	rows, err := d.S.Query(ctx, "SELECT agent, created_ms FROM profiling_agent_tokens ORDER BY agent")
	if err != nil {
		return nil, fmt.Errorf("list agent tokens: %w", err)
	}
	defer rows.Close()
	out := []AgentToken{}
	for rows.Next() {
		var t AgentToken
		var created int64
		if err := rows.Scan(&t.Agent, &created); err != nil {
			return nil, fmt.Errorf("list agent tokens: %w", err)
		}
		t.Created = fromMS(created)
		out = append(out, t)
	}
	return out, rows.Err()
}

// AgentForToken returns the agent a per-agent token belongs to, or "" and
// no error when it is not one.
func (d *DB) AgentForToken(ctx context.Context, tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	var agent string
	err := d.S.QueryRow(ctx, "SELECT agent FROM profiling_agent_tokens WHERE token_hash = ?", hashToken(tok)).Scan(&agent)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("agent token: %w", err)
	}
	return agent, nil
}
