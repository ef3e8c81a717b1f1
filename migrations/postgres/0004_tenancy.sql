-- Tenancy: organizations, their members and invitations. Names are encrypted under the org's key
-- (stored wrapped in data_keys under the org id). On SQLite the application wall alone isolates
-- tenants; PostgreSQL adds row-level security (see the PostgreSQL migration).
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name_ct BYTEA NOT NULL,
    require_mfa BIGINT NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE org_members (
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members(user_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email_bidx TEXT NOT NULL,
    email_ct BYTEA NOT NULL,
    role TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX invitations_org ON invitations(org_id, created_at);

-- Finding an invitation from its emailed token happens before any tenant is known: this table
-- holds only the token's keyed hash and where it leads.
CREATE TABLE invitation_tokens (
    token_hash TEXT PRIMARY KEY,
    invitation_id TEXT NOT NULL REFERENCES invitations(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL
);

-- The data wall. The application works as strongroom_app, a role without BYPASSRLS that owns no
-- table, so row-level security applies to every query it makes. Each transaction on tenant data
-- sets strongroom.org_id (and strongroom.user_id) with set_config(..., true), i.e. SET LOCAL.
-- Roles are shared by every database of the server, and several databases may be migrated at
-- once (tests do): each statement runs only when needed, and a concurrent twin is not an error.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'strongroom_app') THEN
        BEGIN
            CREATE ROLE strongroom_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation OR internal_error THEN NULL;
        END;
    END IF;
    -- A role of that name made earlier by someone else must not carry more rights than this one.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'strongroom_app'
               AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb)) THEN
        ALTER ROLE strongroom_app NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;
    END IF;
    -- The login that runs the migrations (and may own the tables) must be able to switch to it.
    IF NOT pg_has_role(current_user, 'strongroom_app', 'MEMBER') THEN
        BEGIN
            EXECUTE 'GRANT strongroom_app TO ' || quote_ident(current_user);
        EXCEPTION WHEN duplicate_object OR unique_violation OR internal_error THEN NULL;
        END;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO strongroom_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO strongroom_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO strongroom_app;
-- The audit trail is append-only for the application, whatever the triggers say.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM strongroom_app;

-- Reading: the current org, plus (for "my orgs") the orgs and memberships of the current user.
-- Writing: only the current org.
ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY orgs_read ON orgs FOR SELECT
    USING (id = current_setting('strongroom.org_id', true)
           OR id IN (SELECT m.org_id FROM org_members m WHERE m.user_id = current_setting('strongroom.user_id', true)));
CREATE POLICY orgs_insert ON orgs FOR INSERT WITH CHECK (id = current_setting('strongroom.org_id', true));
CREATE POLICY orgs_update ON orgs FOR UPDATE
    USING (id = current_setting('strongroom.org_id', true)) WITH CHECK (id = current_setting('strongroom.org_id', true));
CREATE POLICY orgs_delete ON orgs FOR DELETE USING (id = current_setting('strongroom.org_id', true));

ALTER TABLE org_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_members FORCE ROW LEVEL SECURITY;
CREATE POLICY org_members_read ON org_members FOR SELECT
    USING (org_id = current_setting('strongroom.org_id', true)
           OR user_id = current_setting('strongroom.user_id', true));
CREATE POLICY org_members_insert ON org_members FOR INSERT WITH CHECK (org_id = current_setting('strongroom.org_id', true));
CREATE POLICY org_members_update ON org_members FOR UPDATE
    USING (org_id = current_setting('strongroom.org_id', true)) WITH CHECK (org_id = current_setting('strongroom.org_id', true));
CREATE POLICY org_members_delete ON org_members FOR DELETE USING (org_id = current_setting('strongroom.org_id', true));

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY invitations_isolation ON invitations
    USING (org_id = current_setting('strongroom.org_id', true))
    WITH CHECK (org_id = current_setting('strongroom.org_id', true));
