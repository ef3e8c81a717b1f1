-- API keys (issue 14): `srk_<prefix>_<secret>`; only the keyed hash of the secret is stored, the
-- prefix is shown in lists. A key is a credential like a session: it is looked up by that hash
-- before any tenant is known, so (like sessions) this table is outside row-level security; every
-- management statement names its org, and a key only ever acts through its org's own transaction
-- (where the wall checks the org again). Scopes are space-separated; allowed_networks is a
-- comma-separated list of CIDRs (empty: anywhere). last_used_ip is stored masked.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    rate_limit_per_minute BIGINT NOT NULL,
    allowed_networks TEXT NOT NULL DEFAULT '',
    last_used_at BIGINT,
    last_used_ip TEXT
);
CREATE INDEX api_keys_org ON api_keys(org_id, id);
