-- Nothing to do on PostgreSQL: SQLite moves its audit log to a file of its own in this
-- migration (see migrations/sqlite/0007_audit_file.sql); PostgreSQL's readers are not slowed by
-- the log's commits, so `decisions` stays where it is.
SELECT 1;
