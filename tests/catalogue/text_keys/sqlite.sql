-- text_keys on sqlite: tables and rows, as of 2026-03-15T12:00:00Z.
-- Text primary keys with spaces, quotes, unicode, LIKE wildcards, a semicolon and a backslash;
-- taggings reference them, ON DELETE CASCADE.
CREATE TABLE tags (
    code VARCHAR(40) NOT NULL PRIMARY KEY,
    created_at DATETIME
);
CREATE TABLE taggings (
    id VARCHAR(40) NOT NULL PRIMARY KEY,
    tag_code VARCHAR(40) NOT NULL,
    note VARCHAR(40),
    CONSTRAINT fk_taggings_tag FOREIGN KEY (tag_code) REFERENCES tags (code) ON DELETE CASCADE
);
INSERT INTO tags VALUES
    ('plain', '2024-01-01 00:00:00'),
    ('with space', '2024-01-02 00:00:00'),
    ('O''Brien', '2024-01-03 00:00:00'),
    ('say "hi"', '2024-01-04 00:00:00'),
    ('naïve ☃ 東京', '2024-01-05 00:00:00'),
    ('semi;colon', '2024-01-06 00:00:00'),
    ('100%_sure', '2024-01-07 00:00:00'),
    ('back\slash', '2024-01-08 00:00:00'),
    ('fresh', '2026-03-01 00:00:00');
INSERT INTO taggings VALUES
    ('t 1', 'plain', 'ordinary'),
    ('t ''2''', 'O''Brien', 'evidence'),
    ('t "3"', 'O''Brien', 'ordinary'),
    ('t ☃ 4', 'naïve ☃ 東京', 'ordinary'),
    ('t;5', 'semi;colon', 'ordinary'),
    ('t%6', '100%_sure', 'ordinary'),
    ('t_7', 'fresh', 'ordinary'),
    ('t 8', 'back\slash', 'ordinary');
