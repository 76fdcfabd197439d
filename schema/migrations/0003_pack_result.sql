-- Pack mode (`qos pack`) records each ExecutionResponse joined with what
-- admission recorded as a row of kind 3: the usual columns (time, source
-- channel 254 = tpu_to_pack, ip, fee payer as signer, fee, estimated cost
-- units as cus, cu price, value, admission score) plus what the validator
-- reported: the execution slot, the not-included reason (0 = included),
-- the cost units charged and the fee payer's balance after execution.
-- Rows of other kinds hold zero in these columns.
--
-- Constant defaults make this a catalogue change: existing partitions are
-- not rewritten.
ALTER TABLE completed_tx
    ADD COLUMN slot              bigint   NOT NULL DEFAULT 0,
    ADD COLUMN reason            smallint NOT NULL DEFAULT 0,
    ADD COLUMN cost_units        bigint   NOT NULL DEFAULT 0,
    ADD COLUMN fee_payer_balance bigint   NOT NULL DEFAULT 0;

COMMENT ON COLUMN completed_tx.kind IS
    '0 completed transaction, 1 sigverify failure (penalty), 2 unparsable packet (penalty), 3 pack-mode execution result';
COMMENT ON COLUMN completed_tx.reason IS
    'pack mode: the ExecutionResponse not_included_reason (0 included; pack.ReasonName names them)';
