-- SQLite only (see migrations/sqlite/0009_packed_days.sql): PostgreSQL keeps the payers in
-- `payment_days` and builds each day's packed record in the read. Nothing changes here.
SELECT 1;
