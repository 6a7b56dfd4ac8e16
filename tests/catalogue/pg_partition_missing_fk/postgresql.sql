-- pg_partition_missing_fk on postgresql: tables and rows, as of 2026-03-15T12:00:00Z.
-- Each partition of payments declares its own RESTRICT key to customers, except
-- payments_2024_03, attached later without one.
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
ALTER TABLE payments_2024_01 ADD CONSTRAINT payments_2024_01_customer
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE RESTRICT;
ALTER TABLE payments_2024_02 ADD CONSTRAINT payments_2024_02_customer
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE RESTRICT;
CREATE TABLE payments_2024_03 (
    id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    amount NUMERIC(10, 2) NOT NULL,
    paid_at TIMESTAMP NOT NULL
);
ALTER TABLE payments ATTACH PARTITION payments_2024_03
    FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
INSERT INTO customers VALUES
    (1, 'never paid', '2024-05-01 10:00:00'),
    (2, 'paid in January', '2024-05-02 10:00:00'),
    (3, 'paid in March only', '2024-05-03 10:00:00'),
    (4, 'never paid either', '2024-05-04 10:00:00'),
    (5, 'young', '2026-02-01 10:00:00'),
    (6, 'paid in February and March', '2024-05-06 10:00:00');
INSERT INTO payments VALUES
    (1, 2, 20.00, '2024-01-05 10:00:00'),
    (2, 3, 30.00, '2024-03-05 10:00:00'),
    (3, 3, 40.00, '2024-03-06 10:00:00'),
    (4, 5, 50.00, '2024-03-07 10:00:00'),
    (5, 6, 60.00, '2024-02-08 10:00:00'),
    (6, 6, 70.00, '2024-03-09 10:00:00');
