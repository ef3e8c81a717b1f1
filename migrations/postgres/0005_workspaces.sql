-- Workspaces (deal rooms and boards), their members, items and comments ("updates").
-- Names, descriptions, titles, fields and comment bodies are encrypted under the org's key.
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name_ct BYTEA NOT NULL,
    description_ct BYTEA NOT NULL,
    statuses TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, id)
);
CREATE INDEX workspaces_org ON workspaces(org_id, id);

-- Child rows reference their parent together with its org: a row can never point into
-- another org, and a workspace role ends with the org membership it depends on.
CREATE TABLE workspace_members (
    workspace_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id),
    FOREIGN KEY (org_id, workspace_id) REFERENCES workspaces(org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES org_members(org_id, user_id) ON DELETE CASCADE
);
CREATE INDEX workspace_members_user ON workspace_members(org_id, user_id);

CREATE TABLE items (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    title_ct BYTEA NOT NULL,
    status TEXT NOT NULL,
    assignee_id TEXT,
    due_on TEXT,
    fields_ct BYTEA NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, workspace_id, id),
    FOREIGN KEY (org_id, workspace_id) REFERENCES workspaces(org_id, id) ON DELETE CASCADE
);
CREATE INDEX items_workspace ON items(org_id, workspace_id, id);

CREATE TABLE item_updates (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    body_ct BYTEA NOT NULL,
    author_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (org_id, workspace_id, item_id) REFERENCES items(org_id, workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX item_updates_item ON item_updates(org_id, item_id, id);

-- Row-level security, as for every tenant table.
DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['workspaces', 'workspace_members', 'items', 'item_updates'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (org_id = current_setting(''strongroom.org_id'', true)) '
                       'WITH CHECK (org_id = current_setting(''strongroom.org_id'', true))', t || '_isolation', t);
    END LOOP;
END
$$;
