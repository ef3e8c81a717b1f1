-- Audit trail queries, retention and monotonic times (SQLite dialect).

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
-- `through_seq` (a prefix) may be deleted. The retention job writes it, deletes, and removes it in
-- one transaction, then appends a signed checkpoint so the rest of the chain still verifies.
CREATE TABLE audit_retention_gate (
    chain TEXT PRIMARY KEY,
    through_seq BIGINT NOT NULL
);

DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM audit_retention_gate g WHERE g.chain = OLD.chain AND OLD.seq <= g.through_seq)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
