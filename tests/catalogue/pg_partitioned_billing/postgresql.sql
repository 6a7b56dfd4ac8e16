-- pg_partitioned_billing on postgresql: tables and rows, as of 2026-03-15T12:00:00Z.
-- payments is partitioned by month with a DEFAULT partition; its foreign key to customers is
-- declared on each partition (as sample schemas do), not on the parent.
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, closed_at TIMESTAMP);
CREATE TABLE payments (
    id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    amount NUMERIC(10, 2) NOT NULL,
    paid_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id, paid_at)
) PARTITION BY RANGE (paid_at);
CREATE TABLE payments_2024_01 PARTITION OF payments FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE payments_2024_02 PARTITION OF payments FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE TABLE payments_2024_03 PARTITION OF payments FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
CREATE TABLE payments_default PARTITION OF payments DEFAULT;
ALTER TABLE payments_2024_01 ADD CONSTRAINT payments_2024_01_customer
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;
ALTER TABLE payments_2024_02 ADD CONSTRAINT payments_2024_02_customer
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;
ALTER TABLE payments_2024_03 ADD CONSTRAINT payments_2024_03_customer
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;
ALTER TABLE payments_default ADD CONSTRAINT payments_default_customer
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;
INSERT INTO customers VALUES
    (1, 'small payer', '2024-04-01 10:00:00'),
    (2, 'large payer', '2024-04-02 10:00:00'),
    (3, 'old small payer', '2024-04-03 10:00:00'),
    (4, 'large payer in default', '2024-04-04 10:00:00'),
    (5, 'never paid', '2024-04-05 10:00:00'),
    (6, 'mixed payer', '2024-04-06 10:00:00'),
    (7, 'young', '2026-02-01 10:00:00'),
    (8, 'open', NULL);
INSERT INTO payments VALUES
    (1, 1, 20.00, '2024-01-05 10:00:00'),
    (2, 1, 30.00, '2024-01-20 10:00:00'),
    (3, 2, 250.00, '2024-02-10 10:00:00'),
    (4, 3, 15.00, '2023-11-30 10:00:00'),
    (5, 4, 150.00, '2025-06-01 10:00:00'),
    (6, 6, 50.00, '2024-03-03 10:00:00'),
    (7, 6, 500.00, '2024-03-04 10:00:00'),
    (8, 7, 300.00, '2024-02-11 10:00:00'),
    (9, 8, 10.00, '2024-03-05 10:00:00');
