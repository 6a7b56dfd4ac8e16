-- sqlite_text_dates on sqlite: tables and rows, as of 2026-03-15T12:00:00Z.
-- Dates kept as ISO strings in a column declared TEXT (SQLite has no date type of its own).
CREATE TABLE visits (id INTEGER PRIMARY KEY, page TEXT NOT NULL, visited_at TEXT);
INSERT INTO visits VALUES
    (1, '/home', '2024-01-01 10:00:00'),
    (2, '/cart', '2024-02-01T10:00:00Z'),
    (3, '/home', '2024-03-01'),
    (4, '/pay', '2026-03-01 10:00:00'),
    (5, '/home', NULL);
