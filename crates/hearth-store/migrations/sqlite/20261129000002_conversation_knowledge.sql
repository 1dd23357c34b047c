-- Knowledge bases attached to a conversation (a JSON array of ids): answers retrieve from them.
ALTER TABLE conversations ADD COLUMN knowledge_base_ids TEXT NOT NULL DEFAULT '[]';
