-- Inbound billing events (issue 14). Stripe names an org by its metadata or its customer id,
-- before any tenant is known: both tables are the platform's, outside row-level security.
-- billing_events keeps every event id once (duplicates are acknowledged and ignored).
CREATE TABLE billing_events (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    org_id TEXT,
    received_at BIGINT NOT NULL
);
CREATE TABLE billing_accounts (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    customer_id TEXT UNIQUE,
    plan TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- The `created` time of the event that set the plan: an older event, delivered late, is ignored.
    event_created BIGINT NOT NULL DEFAULT 0
);
