-- A verification (or pending-signup) token carries the password hash of the signup that created it,
-- so confirming the address activates that signup's password and no other (no account pre-hijacking).
ALTER TABLE user_tokens ADD COLUMN password_hash TEXT;
