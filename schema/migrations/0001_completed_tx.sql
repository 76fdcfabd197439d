-- One row per completed transaction (a packet the sidecar admitted and the
-- scheduler reported on), range-partitioned by day of observed_at (UTC).
-- Partitions are named completed_tx_pYYYYMMDD and created by the daemon
-- ahead of time; `qos-cli db prune` drops whole ones.
--
-- The u64 quantities of the wire (fee, cus, cu_price, exec_ns, packet_hash,
-- seed, seq) are stored bit for bit in bigint: a value ≥ 2^63 reads back
-- negative in SQL but round-trips exactly to replay.
CREATE TABLE completed_tx (
    observed_at timestamptz      NOT NULL, -- completion time
    seq         bigint           NOT NULL, -- per-daemon-run sequence
    seed        bigint           NOT NULL, -- xxhash seed of packet_hash
    channel     smallint         NOT NULL, -- source channel index
    ip          inet             NOT NULL,
    signer      bytea            NOT NULL CHECK (octet_length(signer) = 32),
    fee         bigint           NOT NULL, -- total fee, lamports
    cus         bigint           NOT NULL, -- requested compute units
    cu_price    bigint           NOT NULL, -- micro-lamports per CU
    exec_ns     bigint           NOT NULL, -- 0 = not executed
    scheduled   boolean          NOT NULL,
    value       double precision NOT NULL, -- model value of the observation
    score       double precision NOT NULL, -- admission score
    packet_hash bigint           NOT NULL,
    -- The key makes every row unique and serves time-range scans and
    -- replay's ordered keyset reads.
    PRIMARY KEY (observed_at, seq, seed)
) PARTITION BY RANGE (observed_at);

-- One row per batch the sink committed, keyed by the batch's first row and
-- written in the same transaction as the batch's rows. A COPY whose
-- acknowledgement was lost is retried; the retry finds its marker and skips
-- the batch, so no row is ever written twice. Partitioned like completed_tx
-- so that pruning drops both.
CREATE TABLE completed_tx_batches (
    observed_at timestamptz NOT NULL,
    seq         bigint      NOT NULL,
    seed        bigint      NOT NULL,
    rows        integer     NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (observed_at, seq, seed)
) PARTITION BY RANGE (observed_at);
