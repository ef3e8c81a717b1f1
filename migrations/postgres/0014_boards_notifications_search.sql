-- Boards: an item's place in its column, its Markdown description and its labels (both sealed
-- under the org key like the title). A new item's position is its creation time in milliseconds
-- (last, with no lookup); legacy rows sit at position 0 and keep their creation order.
ALTER TABLE items ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN description_ct BYTEA;
ALTER TABLE items ADD COLUMN labels_ct BYTEA;

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
    text_ct BYTEA NOT NULL,
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
);
CREATE INDEX search_terms_target ON search_terms(org_id, target_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON notifications, notification_settings, search_terms TO strongroom_app;

ALTER TABLE search_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE search_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY search_terms_isolation ON search_terms
    USING (org_id = current_setting('strongroom.org_id', true))
    WITH CHECK (org_id = current_setting('strongroom.org_id', true));

-- A notification is written inside the org that caused it and read (and marked read) by its
-- recipient alone, whatever org the transaction is in.
ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY notifications_insert ON notifications FOR INSERT
    WITH CHECK (org_id = current_setting('strongroom.org_id', true));
-- (Read in the org's context too: deleting those about a deleted item must see them first.)
CREATE POLICY notifications_read ON notifications FOR SELECT
    USING (user_id = current_setting('strongroom.user_id', true)
           OR org_id = current_setting('strongroom.org_id', true));
CREATE POLICY notifications_update ON notifications FOR UPDATE
    USING (user_id = current_setting('strongroom.user_id', true))
    WITH CHECK (user_id = current_setting('strongroom.user_id', true));
CREATE POLICY notifications_delete ON notifications FOR DELETE
    USING (user_id = current_setting('strongroom.user_id', true)
           OR org_id = current_setting('strongroom.org_id', true));

-- Whether a notification's recipient still holds a role in its workspace is read in the
-- recipient's own context: a user may read their own workspace roles (and nothing else of them).
CREATE POLICY workspace_members_own_read ON workspace_members FOR SELECT
    USING (user_id = current_setting('strongroom.user_id', true));

ALTER TABLE notification_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_settings FORCE ROW LEVEL SECURITY;
-- Changed by their owner only; read by whoever notifies them (on/off switches, nothing else).
CREATE POLICY notification_settings_read ON notification_settings FOR SELECT USING (true);
CREATE POLICY notification_settings_insert ON notification_settings FOR INSERT
    WITH CHECK (user_id = current_setting('strongroom.user_id', true));
CREATE POLICY notification_settings_update ON notification_settings FOR UPDATE
    USING (user_id = current_setting('strongroom.user_id', true))
    WITH CHECK (user_id = current_setting('strongroom.user_id', true));
CREATE POLICY notification_settings_delete ON notification_settings FOR DELETE
    USING (user_id = current_setting('strongroom.user_id', true));
