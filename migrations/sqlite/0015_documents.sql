-- Documents: folders, documents, their versions, share links and what each link was used for.
-- Names and recipients are sealed under the org's key; the content lives in the object store,
-- encrypted under a per-version content key (stored here wrapped by the org's key), at an object
-- key made of ids only (orgs/{org_id}/docs/{version_id}).
CREATE TABLE folders (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    parent_id TEXT,
    name_ct BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, workspace_id, id),
    FOREIGN KEY (org_id, workspace_id) REFERENCES workspaces(org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, workspace_id, parent_id) REFERENCES folders(org_id, workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX folders_ws ON folders(org_id, workspace_id, id);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    folder_id TEXT,
    name_ct BLOB NOT NULL,
    latest_version BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, workspace_id) REFERENCES workspaces(org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, workspace_id, folder_id) REFERENCES folders(org_id, workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX documents_ws ON documents(org_id, workspace_id, id);

CREATE TABLE document_versions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    number BIGINT NOT NULL,
    name_ct BLOB NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    key_wrapped BLOB NOT NULL,
    uploaded_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (document_id, number),
    UNIQUE (org_id, document_id, id),
    FOREIGN KEY (org_id, document_id) REFERENCES documents(org_id, id) ON DELETE CASCADE
);

-- A share link: the secret is in its URL only; here its keyed hash (share_link_tokens, read
-- before any tenant is known) and its terms. version_id NULL follows the latest version.
CREATE TABLE share_links (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    version_id TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    max_downloads BIGINT,
    downloads BIGINT NOT NULL DEFAULT 0,
    password_hash TEXT,
    recipient_ct BLOB,
    watermark BIGINT NOT NULL DEFAULT 0,
    notify BIGINT NOT NULL DEFAULT 0,
    first_access_at BIGINT,
    revoked_at BIGINT,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, document_id) REFERENCES documents(org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, document_id, version_id) REFERENCES document_versions(org_id, document_id, id) ON DELETE CASCADE
);
CREATE INDEX share_links_doc ON share_links(org_id, document_id, id);

CREATE TABLE share_link_tokens (
    token_hash TEXT PRIMARY KEY,
    link_id TEXT NOT NULL REFERENCES share_links(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL
);

-- Each use of a link: downloads (with bytes sent) and refused attempts; IPs masked, recipients
-- sealed.
CREATE TABLE link_accesses (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    link_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    ip TEXT NOT NULL,
    recipient_ct BLOB,
    bytes BIGINT NOT NULL,
    FOREIGN KEY (org_id, link_id) REFERENCES share_links(org_id, id) ON DELETE CASCADE
);
CREATE INDEX link_accesses_link ON link_accesses(org_id, link_id, id);

-- One-time codes sent to a link's recipient (keyed hash of the code; the address sealed).
CREATE TABLE link_codes (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    link_id TEXT NOT NULL,
    email_ct BLOB NOT NULL,
    code_hash TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    FOREIGN KEY (org_id, link_id) REFERENCES share_links(org_id, id) ON DELETE CASCADE
);
CREATE INDEX link_codes_link ON link_codes(org_id, link_id);

-- Objects to remove from the object store once not_before has passed: an upload in progress
-- (claimed, i.e. deleted from here, by the transaction that records its version: one that never
-- finishes is removed by the cleanup job), a deleted document's versions, a deleted org's prefix
-- (a key ending in '/'). Ids only.
CREATE TABLE blob_garbage (
    object_key TEXT PRIMARY KEY,
    not_before BIGINT NOT NULL
);
CREATE INDEX blob_garbage_due ON blob_garbage(not_before);
