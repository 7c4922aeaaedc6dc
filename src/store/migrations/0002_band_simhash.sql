-- The band index keeps each item's SimHash and id beside its band values, so a lookup
-- compares candidates and names the match without reading item rows. Bands are now wide and probed
-- with flipped bits; the index is rebuilt on open (the layout key is cleared here).
DROP TABLE simhash_bands;
CREATE TABLE simhash_bands (
    band    INTEGER NOT NULL,
    value   INTEGER NOT NULL,
    item    INTEGER NOT NULL REFERENCES items (rowid) ON DELETE CASCADE,
    simhash INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (band, value, item)
) WITHOUT ROWID;
CREATE INDEX simhash_bands_item ON simhash_bands (item);
DELETE FROM meta WHERE key = 'simhash_bands';
