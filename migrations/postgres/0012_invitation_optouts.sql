-- Addresses that asked not to be invited again by an org (the one-click link in every invitation
-- email). Keyed by the email's blind index; the address itself is not stored.
CREATE TABLE invitation_optouts (
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email_bidx TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, email_bidx)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON invitation_optouts TO strongroom_app;
ALTER TABLE invitation_optouts ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitation_optouts FORCE ROW LEVEL SECURITY;
CREATE POLICY invitation_optouts_isolation ON invitation_optouts
    USING (org_id = current_setting('strongroom.org_id', true))
    WITH CHECK (org_id = current_setting('strongroom.org_id', true));
