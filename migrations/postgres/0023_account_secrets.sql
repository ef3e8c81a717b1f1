-- Accounts' own fields (email, name, their sessions' IP and user agent) are sealed under a key that
-- needs the account's shred secret, kept in the vault outside the database. 1 once an account's
-- fields are (new accounts at once; older ones when a server first starts with this).
ALTER TABLE users ADD COLUMN account_sealed INTEGER NOT NULL DEFAULT 0;
