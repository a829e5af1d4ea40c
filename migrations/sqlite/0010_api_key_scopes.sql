-- API keys get scopes and an optional end (issue 12). Keys from before scopes existed keep what
-- they could do: everything their owner's role allows but managing keys.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'search,chat,ingest,admin';
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
