-- null_everywhere on mariadb: tables and rows, as of 2026-03-15T12:00:00Z.
-- NULLs where they hurt: in the age column, in a hold's filtered column, in foreign keys.
CREATE TABLE users (id INTEGER PRIMARY KEY, closed_at DATETIME);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    user_id INTEGER,
    folder VARCHAR(20) NOT NULL,
    customer_ref INTEGER,
    sent_at DATETIME,
    CONSTRAINT fk_messages_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
INSERT INTO users VALUES (1, '2024-01-01 00:00:00'), (2, NULL), (3, '2024-01-03 00:00:00'),
    (4, '2024-01-04 00:00:00');
INSERT INTO messages VALUES
    (1, NULL, 'inbox', 1, '2024-02-01 00:00:00'),
    (2, NULL, 'inbox', 7, '2024-02-02 00:00:00'),
    (3, NULL, 'inbox', NULL, '2024-02-03 00:00:00'),
    (4, 1, 'inbox', 2, NULL),
    (5, 3, 'inbox', NULL, '2026-03-01 00:00:00'),
    (6, 2, 'drafts', 3, '2024-02-06 00:00:00'),
    (7, NULL, 'inbox', 4, NULL);
