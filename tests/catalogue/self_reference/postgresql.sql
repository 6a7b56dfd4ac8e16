-- self_reference on postgresql: tables and rows, as of 2026-03-15T12:00:00Z.
-- employees.manager_id -> employees (SET NULL); teams.parent_id -> teams (CASCADE).
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    manager_id INTEGER,
    left_at TIMESTAMP,
    CONSTRAINT fk_employees_manager FOREIGN KEY (manager_id) REFERENCES employees (id)
        ON DELETE SET NULL
);
CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER,
    dissolved_at TIMESTAMP,
    CONSTRAINT fk_teams_parent FOREIGN KEY (parent_id) REFERENCES teams (id) ON DELETE CASCADE
);
INSERT INTO employees VALUES
    (1, NULL, '2024-01-01 00:00:00'),
    (2, 1, NULL),
    (3, 2, '2024-02-01 00:00:00'),
    (4, 3, NULL),
    (5, 5, '2024-03-01 00:00:00'),
    (6, 1, '2024-04-01 00:00:00');
INSERT INTO teams VALUES
    (1, NULL, '2024-01-01 00:00:00'),
    (2, 1, NULL),
    (3, 1, '2024-02-01 00:00:00'),
    (4, 2, NULL),
    (5, NULL, '2024-03-01 00:00:00'),
    (6, 5, NULL),
    (7, NULL, '2026-02-01 00:00:00');
