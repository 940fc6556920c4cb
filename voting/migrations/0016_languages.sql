-- Edition data in the six languages (issue 19, item 5). The English text stays where it
-- was (editions.name, categories.name, nominations.title and summary); the other
-- languages sit beside it as {"fr": {"name": ..., "description": ...}, ...}, so every
-- query that reads the English text reads what it always read.
ALTER TABLE editions ADD COLUMN translations jsonb NOT NULL DEFAULT '{}'::jsonb;

ALTER TABLE categories
    ADD COLUMN description text NOT NULL DEFAULT '',
    ADD COLUMN translations jsonb NOT NULL DEFAULT '{}'::jsonb;

-- A nomination's title and summary in other languages, written by its nominator:
-- {"fr": {"title": ..., "summary": ...}}.
ALTER TABLE nominations ADD COLUMN translations jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Editions and categories are the owner's (edition load): SELECT only, from 0011's grant.
-- Nominators write their nomination's translations with its other fields.
GRANT UPDATE (translations) ON nominations TO wsis_app;
