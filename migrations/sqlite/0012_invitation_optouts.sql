-- Addresses that asked not to be invited again by an org (the one-click link in every invitation
-- email). Keyed by the email's blind index; the address itself is not stored.
CREATE TABLE invitation_optouts (
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email_bidx TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, email_bidx)
);
