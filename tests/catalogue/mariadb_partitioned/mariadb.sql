-- mariadb_partitioned on mariadb: tables and rows, as of 2026-03-15T12:00:00Z.
-- access_log is partitioned by range of days (MariaDB forbids foreign keys on partitioned
-- tables); its key must include the partitioning column.
CREATE TABLE access_log (
    id INTEGER NOT NULL,
    ip_prefix VARCHAR(20) NOT NULL,
    logged_at DATETIME NOT NULL,
    PRIMARY KEY (id, logged_at)
) PARTITION BY RANGE (TO_DAYS(logged_at)) (
    PARTITION p2023 VALUES LESS THAN (TO_DAYS('2024-01-01')),
    PARTITION p2024 VALUES LESS THAN (TO_DAYS('2025-01-01')),
    PARTITION p2025 VALUES LESS THAN (TO_DAYS('2026-01-01')),
    PARTITION pmax VALUES LESS THAN MAXVALUE
);
INSERT INTO access_log VALUES
    (1, '10.0.0.0', '2023-05-01 10:00:00'),
    (2, '10.0.1.0', '2023-06-01 10:00:00'),
    (3, '10.0.0.0', '2024-05-01 10:00:00'),
    (4, '10.0.2.0', '2024-06-01 10:00:00'),
    (5, '10.0.3.0', '2025-01-01 10:00:00'),
    (6, '10.0.0.0', '2025-12-31 23:59:59'),
    (7, '10.0.4.0', '2026-03-01 10:00:00');
