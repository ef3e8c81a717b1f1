-- Tenancy: organizations, their members and invitations. Names are encrypted under the org's key
-- (stored wrapped in data_keys under the org id). On SQLite the application wall alone isolates
-- tenants; PostgreSQL adds row-level security (see the PostgreSQL migration).
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name_ct BLOB NOT NULL,
    require_mfa BIGINT NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE org_members (
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members(user_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email_bidx TEXT NOT NULL,
    email_ct BLOB NOT NULL,
    role TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX invitations_org ON invitations(org_id, created_at);

-- Finding an invitation from its emailed token happens before any tenant is known: this table
-- holds only the token's keyed hash and where it leads.
CREATE TABLE invitation_tokens (
    token_hash TEXT PRIMARY KEY,
    invitation_id TEXT NOT NULL REFERENCES invitations(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL
);
