-- Outbound webhooks (issue 14). The org's audit chain is their outbox: the delivery loop reads the
-- events that follow each endpoint's cursor, so a change and the event that announces it commit
-- together and no write path pays for webhooks. URLs and secrets are sealed under the org's key.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    url_ct BYTEA NOT NULL,
    events TEXT NOT NULL,
    secret_ct BYTEA NOT NULL,
    old_secret_ct BYTEA,
    old_secret_until BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    disabled_reason TEXT,
    failures BIGINT NOT NULL DEFAULT 0,
    UNIQUE (org_id, id)
);

-- One event for one endpoint: its payload, and where its retries stand.
CREATE TABLE webhook_messages (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    next_attempt_at BIGINT,
    UNIQUE (webhook_id, event_id),
    FOREIGN KEY (org_id, webhook_id) REFERENCES webhooks(org_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_messages_hook ON webhook_messages(org_id, webhook_id, id);

-- Every attempt: the delivery log.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES webhook_messages(id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    FOREIGN KEY (org_id, webhook_id) REFERENCES webhooks(org_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(org_id, webhook_id, id);

-- What the delivery loop looks at across orgs (ids and times only, read before any tenant is
-- known): each enabled endpoint's cursor in its org's chain, and the messages due.
CREATE TABLE webhook_cursors (
    webhook_id TEXT PRIMARY KEY REFERENCES webhooks(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    locked_until BIGINT
);
CREATE TABLE webhook_due (
    message_id TEXT PRIMARY KEY REFERENCES webhook_messages(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    locked_until BIGINT
);
CREATE INDEX webhook_due_at ON webhook_due(due_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON webhooks, webhook_messages, webhook_deliveries,
    webhook_cursors, webhook_due TO strongroom_app;

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhooks', 'webhook_messages', 'webhook_deliveries'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (org_id = current_setting(''strongroom.org_id'', true)) '
                       'WITH CHECK (org_id = current_setting(''strongroom.org_id'', true))', t || '_isolation', t);
    END LOOP;
END
$$;
