-- `payment_days.sale_payers` becomes one 20-byte entry per payer and day instead of one 16-byte
-- entry per sale: the payer key (u64), that payer's number of sales that day (u32) and their
-- amount (i64), little-endian, sorted by payer key. A busy day's row then grows with its
-- distinct customers, not with every sale (the soak test measured the service's memory growing
-- with those lists). The old entries cannot be rewritten in SQL, and the table is derived from
-- `payments`: empty it and clear the setting that says it is filled, so that the service
-- rebuilds every day from the stored payments at start-up (as after migration 4).
DELETE FROM payment_days;
DELETE FROM settings WHERE key = 'payment_days_filled';
