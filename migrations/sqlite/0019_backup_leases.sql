-- A backup in progress holds a lease: while one lasts, deleted documents' objects stay in the
-- object store (the backup's snapshot may still name them). A lease lapses by itself at `until`.
CREATE TABLE backup_leases (
    id TEXT PRIMARY KEY,
    until BIGINT NOT NULL
);
