-- Addresses are proven by a mailed link (issue 12). Accounts from before verification existed
-- were let in without it and keep working as they did; new sign-ups start unverified. A token
-- may carry what it was issued for (the address a verification or e-mail change link is for).
ALTER TABLE users ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 0;
UPDATE users SET email_verified = 1;
ALTER TABLE auth_tokens ADD COLUMN payload TEXT NOT NULL DEFAULT '';
