package cliflags

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/score"
)

// CatAdmission is the --help category of the admission rules.
const CatAdmission = "Admission (Agave rules)"

// The admission flags' names.
const (
	flagAccountLockLimit = "account-lock-limit"
	flagTxV1             = "tx-v1"
)

// AdmissionFlags are the operator's admission switches: what the
// validator's cluster enforces beyond the consensus constants qos applies
// unconditionally (see the README's admission section).
func AdmissionFlags() []cli.Flag {
	return WithEnv([]cli.Flag{
		&cli.IntFlag{Name: flagAccountLockLimit, Category: CatAdmission, Value: score.DefaultAccountLockLimit,
			Usage: "most accounts (static keys plus lookup-table indexes) a transaction may lock: " +
				"64 on mainnet, 128 where increase_tx_account_lock_limit is active; more is refused as lock_too_many_accounts"},
		&cli.BoolFlag{Name: flagTxV1, Category: CatAdmission, Value: true,
			Usage: "accept v1 transactions (SIMD-0385, first byte 0x81); with --tx-v1=false they are refused as format_v1_disabled, without penalty"},
	})
}

// AdmissionLimits reads the admission flags.
func AdmissionLimits(c *cli.Context) (score.Limits, error) {
	n := c.Int(flagAccountLockLimit)
	if n < 1 || n > score.MaxAccounts {
		return score.Limits{}, fmt.Errorf("--account-lock-limit %d must be in [1, %d]", n, score.MaxAccounts)
	}
	return score.Limits{AccountLockLimit: n, NoTxV1: !c.Bool(flagTxV1)}, nil
}
