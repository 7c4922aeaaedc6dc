-- The process holding a lease, as its machine names it (boot id, process namespace,
-- pid, start time): a worker on the same machine that finds it dead takes its leases
-- at once instead of waiting for them to run out. NULL where it is not known.
ALTER TABLE source_leases ADD COLUMN process TEXT;
ALTER TABLE host_leases ADD COLUMN process TEXT;
