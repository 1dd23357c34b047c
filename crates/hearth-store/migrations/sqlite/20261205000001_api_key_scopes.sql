-- What an API key may do: space-separated scopes (`read`, `chat`, `knowledge`, `admin`). Keys
-- made before scopes existed could do everything their owner could, so they keep that.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'read chat knowledge';
UPDATE api_keys SET scopes = 'read chat knowledge admin'
    WHERE user_id IN (SELECT id FROM users WHERE role = 'admin');
