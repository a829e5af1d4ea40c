-- The citation check's verdict is kept with each answer (issue 11), so every later view of it
-- (the web app's marks, the API's conversation) shows which cited sentences the passages do not
-- support. A JSON array of {sentence, cited, support}; answers from before have none recorded.
ALTER TABLE messages ADD COLUMN unsupported TEXT NOT NULL DEFAULT '[]';
