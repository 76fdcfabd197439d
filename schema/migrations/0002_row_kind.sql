-- Rows record every input of the daemon's model, not only completed
-- transactions: kind 0 is a completed transaction (every row written
-- before this migration), 1 a packet that failed sigverify, 2 a packet that
-- failed to parse. Feedback rows (1 and 2) carry observed_at, seq, seed,
-- channel (255 for sigverify failures) and ip; their other columns are
-- zero. seq is one sequence over all kinds within a daemon run, so the key
-- (observed_at, seq, seed) and the batch markers stay unique, and replay
-- reads the model's inputs in the order the daemon applied them.
--
-- A constant default makes this a catalogue change: existing partitions
-- are not rewritten.
ALTER TABLE completed_tx ADD COLUMN kind smallint NOT NULL DEFAULT 0;

COMMENT ON COLUMN completed_tx.kind IS
    '0 completed transaction, 1 sigverify failure (penalty), 2 unparsable packet (penalty)';
