-- Account deletion: a request starts a grace period (the owner can cancel it), then the account's
-- personal data is erased and the row kept, pseudonymous, for what it wrote and the audit trail.
ALTER TABLE users ADD COLUMN deletion_due_at BIGINT;
ALTER TABLE users ADD COLUMN erased_at BIGINT;
CREATE INDEX users_deletion_due ON users(deletion_due_at);
