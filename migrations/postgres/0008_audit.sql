-- Audit trail queries, retention, monotonic times and row-level security (PostgreSQL dialect).

-- The time of the newest event: each event's `at` is at least its predecessor's, so a time range
-- is a range of sequence numbers.
ALTER TABLE audit_chains ADD COLUMN last_at BIGINT NOT NULL DEFAULT 0;
UPDATE audit_chains SET last_at = COALESCE((SELECT MAX(e.at) FROM audit_events e WHERE e.chain = audit_chains.chain), 0);

-- Filters walk an index newest first and stop after a page.
CREATE INDEX audit_events_by_action ON audit_events(chain, action, seq);
CREATE INDEX audit_events_by_actor ON audit_events(chain, actor_id, seq);
CREATE INDEX audit_events_by_target ON audit_events(chain, target_id, seq);
CREATE INDEX audit_events_by_time ON audit_events(chain, at, seq);

-- Retention is the only removal: while a row here names a chain, the events of that chain up to
-- `through_seq` (a prefix) may be deleted. Only audit_remove_prefix (below) writes it; the
-- application role can neither write this table nor delete audit events itself.
CREATE TABLE audit_retention_gate (
    chain TEXT PRIMARY KEY,
    through_seq BIGINT NOT NULL
);
REVOKE ALL ON audit_retention_gate FROM strongroom_app;

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM audit_retention_gate g WHERE g.chain = OLD.chain AND OLD.seq <= g.through_seq
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

-- Removes events 1..p_through of one chain and nothing else. Runs with the owner's rights, so it
-- holds itself to what retention does: only the chain of the transaction's own tenant (or the
-- platform chain outside any tenant), never the newest event, and only once a checkpoint event
-- later in the chain names exactly this prefix. The retention job appends that checkpoint (signed
-- under the master key) first; a checkpoint forged by anyone else fails verification.
CREATE FUNCTION audit_remove_prefix(p_chain TEXT, p_through BIGINT) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    removed BIGINT;
    tenant TEXT := COALESCE(current_setting('strongroom.org_id', true), '');
BEGIN
    IF NOT (p_chain = tenant OR (p_chain = 'platform' AND tenant = '')) THEN
        RAISE EXCEPTION 'audit retention: not the current tenant''s chain';
    END IF;
    IF p_through >= (SELECT last_seq FROM audit_chains WHERE chain = p_chain) THEN
        RAISE EXCEPTION 'audit retention: the newest event stays';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM audit_events
        WHERE chain = p_chain AND seq > p_through AND action = 'audit.retention_checkpoint'
          AND (metadata::jsonb ->> 'through_seq') = p_through::text
    ) THEN
        RAISE EXCEPTION 'audit retention: no checkpoint names this prefix';
    END IF;
    INSERT INTO audit_retention_gate (chain, through_seq) VALUES (p_chain, p_through)
        ON CONFLICT (chain) DO UPDATE SET through_seq = EXCLUDED.through_seq;
    DELETE FROM audit_events WHERE chain = p_chain AND seq <= p_through;
    GET DIAGNOSTICS removed = ROW_COUNT;
    DELETE FROM audit_retention_gate WHERE chain = p_chain;
    RETURN removed;
END;
$$;
REVOKE ALL ON FUNCTION audit_remove_prefix(TEXT, BIGINT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_remove_prefix(TEXT, BIGINT) TO strongroom_app;

-- The data wall for the trail: a transaction sees the events of its own org's chain (and the
-- platform chain of account events, which is not any tenant's), never another org's.
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
-- The platform chain (every account's sign-ins and resets) is open only outside any tenant.
CREATE POLICY audit_events_read ON audit_events FOR SELECT
    USING (chain = current_setting('strongroom.org_id', true)
           OR (chain = 'platform' AND COALESCE(current_setting('strongroom.org_id', true), '') = ''));
CREATE POLICY audit_events_insert ON audit_events FOR INSERT
    WITH CHECK (chain = current_setting('strongroom.org_id', true)
           OR (chain = 'platform' AND COALESCE(current_setting('strongroom.org_id', true), '') = ''));
-- Chain heads are moved by appends only; nobody removes one.
REVOKE DELETE, TRUNCATE ON audit_chains FROM strongroom_app;
-- Deletion is refused by privileges (application) and the trigger (everyone) outside retention.
CREATE POLICY audit_events_retention ON audit_events FOR DELETE USING (true);
