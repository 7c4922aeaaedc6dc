-- Full-text search over items. bantin indexes each item's title, lead, body text,
-- authors and tags as `text::search_terms` gives them (lower case, without diacritics,
-- words of letters and digits separated by spaces), so the `ascii` tokenizer only has to
-- split at the spaces. The table keyed by the item's rowid stores no copy of the text
-- (contentless) and only which items hold a word (detail=none: no positions, no
-- phrases, which search does not use); contentless_delete lets a row be deleted by
-- rowid alone. The items are indexed on open (the key in `meta` is cleared here), as
-- the text is folded by bantin, not by SQL.
CREATE VIRTUAL TABLE item_search USING fts5(
    text,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'ascii'
);

-- Any deleted item (retention) leaves the index in the same transaction.
CREATE TRIGGER items_leave_search AFTER DELETE ON items BEGIN
    DELETE FROM item_search WHERE rowid = old.rowid;
END;

DELETE FROM meta WHERE key = 'item_search';
