-- When the session last proved a second factor (at sign-in, enrolment or step-up): an org that
-- requires MFA asks it of the session, not just of the account.
ALTER TABLE sessions ADD COLUMN mfa_at BIGINT;
