-- Acknowledges one delivery inside a listener's transaction: deleted only while the lease is
-- still this claim's. A claim by another worker since then changes the lease (0 rows: the
-- transaction is rolled back); one under way holds the row's lock, and this statement waits for
-- it, then sees the new lease.
DELETE FROM {deliveries} WHERE id = $1 AND lease = $2
