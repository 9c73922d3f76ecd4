-- Every lease taken over from a holder that stopped renewing it (it expired) or whose
-- process was found gone: `/metrics` counts them (ejgate_lease_takeovers_total), and the
-- rows say who lost the lease to whom. Written by acquire_lease in the transaction that
-- takes the lease.
CREATE TABLE lease_takeovers (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL,
    at             TEXT NOT NULL,
    old_host       TEXT NOT NULL,
    old_pid        INTEGER NOT NULL,
    old_renewed_at TEXT NOT NULL,
    new_host       TEXT NOT NULL,
    new_pid        INTEGER NOT NULL
) STRICT;
