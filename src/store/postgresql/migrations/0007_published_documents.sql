-- The documents of the last publish (feeds, the OPML list, the stylesheet), so that
-- every server answers the same bytes and validators whichever process published them.
-- IF NOT EXISTS: a store taken back to an older version migrates forward again.
CREATE TABLE IF NOT EXISTS published_documents (
    name          TEXT PRIMARY KEY,  -- the name under /feeds/, e.g. all.rss
    body          BYTEA NOT NULL,
    etag          TEXT NOT NULL,     -- strong, quoted
    last_modified BIGINT             -- unix ms; NULL when the document tells no time
);

-- One row: bumped by every publish that changed a document, so a server refreshes its
-- copies when it sees another number, and never per request.
CREATE TABLE IF NOT EXISTS publish_generation (
    generation BIGINT NOT NULL
);
INSERT INTO publish_generation (generation)
    SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM publish_generation);
