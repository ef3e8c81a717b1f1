-- Exports (GDPR portability): a zip built in the background, sealed in the object store under
-- exports/{id} with a content key wrapped under the platform key (a person's export) or the
-- org's key (an org's), offered for seven days to the user who asked, then removed.
CREATE TABLE exports (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id TEXT,
    status TEXT NOT NULL,
    key_wrapped BYTEA,
    size BIGINT,
    sha256 TEXT,
    progress BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    ready_at BIGINT,
    expires_at BIGINT NOT NULL,
    locked_until BIGINT
);
CREATE INDEX exports_user ON exports(user_id, created_at);
CREATE INDEX exports_status ON exports(status, created_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON exports TO strongroom_app;
