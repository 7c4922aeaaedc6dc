-- Per-article fetch state: every article address bantin asked for (in canonical form),
-- what it turned out to be, and when it may be asked again. Re-checks of young
-- articles, dead-link backoff and aliases all live here, so a restart forgets none.
CREATE TABLE article_state (
    key           TEXT PRIMARY KEY,    -- canonical form of the address asked for
    url           TEXT NOT NULL,       -- the address as found, asked again on re-checks
    source        TEXT NOT NULL,
    item          INTEGER REFERENCES items (rowid) ON DELETE CASCADE,  -- NULL: dead link
    alias         INTEGER NOT NULL DEFAULT 0,  -- 1: another address of `item`, never asked again
    born          INTEGER,             -- published, else first seen; unix ms
    etag          TEXT,
    last_modified TEXT,
    listed_title  TEXT,                -- the title the listing last showed for it
    next_check    INTEGER,             -- unix ms; NULL: never re-checked
    dead_status   INTEGER,             -- 404 or 410 while the link is dead
    dead_failures INTEGER NOT NULL DEFAULT 0,
    retry_at      INTEGER              -- dead link: not asked before this; unix ms
);
CREATE INDEX article_state_due ON article_state (source, next_check)
    WHERE next_check IS NOT NULL;

-- Articles stored before this state existed: an item's own address is re-checked while
-- young, its first re-check spread over the default hour; its other links are aliases.
INSERT INTO article_state (key, url, source, item, alias, born, next_check)
SELECT l.key, l.url, l.source, l.item, l.key <> i.key, i.sort_time,
       CASE WHEN l.key = i.key
            THEN CAST(strftime('%s', 'now') AS INTEGER) * 1000 + abs(random() % 3600000)
       END
FROM item_links l JOIN items i ON i.rowid = l.item;

-- Validators remember which source asked, so every page of a source (listing page 2..,
-- sitemaps named by an index) is asked conditionally, not only its first URLs.
ALTER TABLE validators ADD COLUMN source TEXT;
CREATE INDEX validators_source ON validators (source);
