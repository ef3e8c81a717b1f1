-- Boards: an item's place in its column, its Markdown description and its labels (both sealed
-- under the org key like the title). A new item's position is its creation time in milliseconds
-- (last, with no lookup); legacy rows sit at position 0 and keep their creation order.
ALTER TABLE items ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN description_ct BLOB;
ALTER TABLE items ADD COLUMN labels_ct BLOB;

-- In-app notifications: written in the org's transaction by the action that causes them, read by
-- their recipient across orgs while they may still see what it is about. The target holds ids
-- only; its text (an item's title, a workspace's name) is sealed under the org key. Deleting the
-- item or workspace, or the recipient's membership, deletes them.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    actor_id TEXT,
    workspace_id TEXT,
    item_id TEXT,
    target TEXT NOT NULL,
    text_ct BLOB NOT NULL,
    read_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_user ON notifications(user_id, id);
CREATE INDEX notifications_org ON notifications(org_id, workspace_id, item_id);

-- Per-user notification settings: one row per kind changed from its default (in-app and email on).
CREATE TABLE notification_settings (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    in_app BIGINT NOT NULL,
    email BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- Search without plaintext at rest: a keyed hash (64 bits, under a key derived from the org's data
-- key) of each word and word prefix of an item's title, description and labels and of a comment's
-- body. Keyed by (org, term, target) only: one B-tree for the lookups, one index to find a text's
-- terms.
CREATE TABLE search_terms (
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    term TEXT NOT NULL,
    PRIMARY KEY (org_id, term, target_id),
    FOREIGN KEY (org_id, workspace_id, item_id) REFERENCES items(org_id, workspace_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX search_terms_target ON search_terms(org_id, target_id);
