-- sqlite_datetime_strings on sqlite: tables and rows, as of 2026-03-15T12:00:00Z.
-- A column declared DATETIME holds whatever text the application wrote: ISO timestamps in
-- several spellings, a bare date, a day-first date (young by any reading), an empty string and a word.
CREATE TABLE visits (id INTEGER PRIMARY KEY, page TEXT NOT NULL, visited_at DATETIME);
INSERT INTO visits VALUES
    (1, '/home', '2024-01-01 10:00:00'),
    (2, '/cart', '2024-01-01T10:00:00'),
    (3, '/home', '2024-01-01'),
    (4, '/pay', '2024-01-01T10:00:00+00:00'),
    (5, '/home', '01/03/2026'),
    (6, '/cart', ''),
    (7, '/pay', '2026-03-01 10:00:00'),
    (8, '/home', 'yesterday'),
    (9, '/home', NULL);
