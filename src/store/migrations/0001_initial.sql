-- Items: one row per story. `key` is the canonical URL the story was first stored
-- under; `article` is the extracted Article as zlib-compressed JSON.
CREATE TABLE items (
    rowid        INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    key          TEXT NOT NULL UNIQUE,
    source       TEXT NOT NULL,
    url          TEXT NOT NULL,
    title        TEXT NOT NULL,
    sort_time    INTEGER NOT NULL,   -- published, else first seen; unix ms
    first_seen   INTEGER NOT NULL,   -- unix ms
    updated_at   INTEGER NOT NULL,   -- unix ms
    content_hash TEXT NOT NULL,
    simhash      INTEGER,            -- NULL when the body is too short to compare
    article      BLOB NOT NULL
);
CREATE INDEX items_sort_time ON items (sort_time DESC, rowid DESC);

-- Every canonical address a story was seen at, including its own.
CREATE TABLE item_links (
    key          TEXT PRIMARY KEY,
    item         INTEGER NOT NULL REFERENCES items (rowid) ON DELETE CASCADE,
    url          TEXT NOT NULL,
    source       TEXT NOT NULL,
    first_seen   INTEGER NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE INDEX item_links_item ON item_links (item);

CREATE TABLE item_categories (
    item     INTEGER NOT NULL REFERENCES items (rowid) ON DELETE CASCADE,
    category TEXT NOT NULL,
    PRIMARY KEY (category, item)
) WITHOUT ROWID;
CREATE INDEX item_categories_item ON item_categories (item);

-- SimHash bands: an item is found by any band value it shares with a query.
CREATE TABLE simhash_bands (
    band  INTEGER NOT NULL,
    value INTEGER NOT NULL,
    item  INTEGER NOT NULL REFERENCES items (rowid) ON DELETE CASCADE,
    PRIMARY KEY (band, value, item)
) WITHOUT ROWID;
CREATE INDEX simhash_bands_item ON simhash_bands (item);

-- Fetched article pages, zlib-compressed, for re-extraction.
CREATE TABLE raw_pages (
    url        TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    html       BLOB NOT NULL
);
CREATE INDEX raw_pages_fetched ON raw_pages (fetched_at);

-- HTTP validators per listing / feed / sitemap URL.
CREATE TABLE validators (
    url           TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    saved_at      INTEGER NOT NULL
);

CREATE TABLE source_state (
    source       TEXT PRIMARY KEY,
    last_success INTEGER,
    failures     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE source_runs (
    rowid       INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    finished_at INTEGER NOT NULL,
    run         TEXT NOT NULL   -- SourceRun as JSON
);
CREATE INDEX source_runs_source ON source_runs (source, rowid DESC);

-- Store settings, e.g. the SimHash band count the band table was built with.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
