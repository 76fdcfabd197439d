package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mr-tron/base58"
	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/cmd/internal/cliflags"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
)

const explainDescription = `Explains how the qos daemon admits and prices transactions: for each
transaction, one JSON object on its own line:

  ok                     true when qos would queue it (subject to the queue and the model)
  reject                 why it is refused, the daemon's counter name (empty when ok):
                           parse_*     bytes that are no transaction at all (the only reasons
                                       that lower the sender IP's score)
                           record_*    the packet record (record_size: more than 1232 bytes)
                           sanitize_*  a well-formed transaction Agave refuses
                           budget_*    an invalid compute-budget instruction or limit
                           lock_*      too many accounts for --account-lock-limit, or a
                                       static key listed twice
                           format_v1_disabled  a v1 transaction with --tx-v1=false
                           input_decode        the text is not valid in the chosen encoding
  version                legacy, v0 or v1 (empty when the bytes are no transaction)
  size                   bytes
  signatures             transaction signatures plus precompile signatures (the fee's count)
  precompile_signatures  signatures declared by ed25519, secp256k1 and secp256r1 instructions
  cu_limit               requested compute units: SetComputeUnitLimit (v1: the config's),
                         else 3 000 per builtin and 200 000 per other instruction (SIMD-0170),
                         capped at 1 400 000
  cu_price               compute-unit price in micro-lamports (v1: the effective price of
                         its priority fee)
  prio_fee               priority fee in lamports
  fee                    total fee in lamports: 5 000 per signature plus the priority fee
  fee_per_cu             fee / max(cu_limit, 3000), what the queue ranks by
  error                  with input_decode, what was wrong

With --model-file and --ip, also:

  model_score            the model's factor for this IP and fee payer
  score                  model_score × fee_per_cu, the daemon's admission score

Transactions are read from the arguments, or one per line from standard input,
base64 by default (as RPC returns them), or --hex or --base58. The bytes go
through the daemon's own inspection code (score.Evaluator.InspectTx, which
admission calls): size, address, then parse, sanitize, compute budget,
account locks and fee.`

func explainCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "hex", Usage: "transactions are hexadecimal"},
		&cli.BoolFlag{Name: "base58", Usage: "transactions are base58"},
		&cli.StringFlag{Name: "model-file", EnvVars: cliflags.Env("model-file"),
			Usage: "model file (as the daemon saves it) to score the transactions with; needs --ip"},
		&cli.StringFlag{Name: "ip", Usage: "sender IP address the transactions come from (default 127.0.0.1)"},
	}
	flags = append(flags, cliflags.AdmissionFlags()...)
	return &cli.Command{
		Name:        "explain",
		Usage:       "show why a transaction is admitted, refused or ranked low, with its fee and compute units",
		ArgsUsage:   "[TRANSACTION...]",
		Description: explainDescription,
		Flags:       flags,
		Action:      explainAction,
	}
}

// explanation is one output line.
type explanation struct {
	OK                   bool     `json:"ok"`
	Reject               string   `json:"reject"`
	Version              string   `json:"version"`
	Size                 int      `json:"size"`
	Signatures           uint64   `json:"signatures"`
	PrecompileSignatures uint64   `json:"precompile_signatures"`
	CULimit              uint64   `json:"cu_limit"`
	CUPrice              uint64   `json:"cu_price"`
	PrioFee              uint64   `json:"prio_fee"`
	Fee                  uint64   `json:"fee"`
	FeePerCU             float64  `json:"fee_per_cu"`
	ModelScore           *float64 `json:"model_score,omitempty"`
	Score                *float64 `json:"score,omitempty"`
	Error                string   `json:"error,omitempty"`
}

// explainer holds what every transaction is explained with.
type explainer struct {
	decode func(string) ([]byte, error)
	eval   score.Evaluator
	addr   netip.Addr
	model  *model.IPSigner // nil: no model scores
}

func explainAction(c *cli.Context) error {
	ex, err := newExplainer(c)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(c.App.Writer)
	enc := json.NewEncoder(out)
	emit := func(s string) error {
		if err := enc.Encode(ex.explain(s)); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	if c.NArg() > 0 {
		for _, a := range c.Args().Slice() {
			if err := emit(a); err != nil {
				return err
			}
		}
		return out.Flush()
	}
	in := bufio.NewScanner(c.App.Reader)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		if err := emit(line); err != nil {
			return err
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("read transactions from standard input: %w", err)
	}
	return out.Flush()
}

func newExplainer(c *cli.Context) (*explainer, error) {
	ex := &explainer{decode: base64.StdEncoding.DecodeString}
	switch {
	case c.Bool("hex") && c.Bool("base58"):
		return nil, errors.New("--hex and --base58 exclude each other")
	case c.Bool("hex"):
		ex.decode = hex.DecodeString
	case c.Bool("base58"):
		ex.decode = base58.Decode
	}
	lim, err := cliflags.AdmissionLimits(c)
	if err != nil {
		return nil, err
	}
	ex.eval = score.Evaluator{Fees: score.DefaultFeeParams(), Limits: lim}
	ex.addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if s := c.String("ip"); s != "" {
		if ex.addr, err = netip.ParseAddr(s); err != nil {
			return nil, fmt.Errorf("--ip: %w", err)
		}
	}
	if f := c.String("model-file"); f != "" {
		if c.String("ip") == "" {
			return nil, errors.New("--model-file needs --ip: the model scores a sender IP and a fee payer")
		}
		if ex.model, err = model.Load(f); err != nil {
			return nil, err
		}
	}
	return ex, nil
}

// explain decodes one transaction and runs it through the daemon's
// per-packet checks.
func (ex *explainer) explain(text string) explanation {
	data, err := ex.decode(text)
	if err != nil {
		return explanation{Reject: "input_decode", Error: err.Error()}
	}
	e := explanation{Size: len(data)}
	// The daemon's one inspection (admission calls the same), on the
	// bytes from --ip with no flags set.
	info, rej := ex.eval.InspectTx(data, ex.addr, 0)
	if rej != score.OK {
		e.Reject = rej.String()
		if !rej.Parse() && !rej.Record() {
			e.Version = ex.eval.View().Version().String()
		}
		return e
	}
	b := info.Budget
	e.OK = true
	e.Version = info.Version.String()
	e.Signatures = b.Signatures
	e.PrecompileSignatures = b.PrecompileSignatures
	e.CULimit = b.CUs
	e.CUPrice = b.CUPrice
	e.PrioFee = b.PrioFee
	e.Fee = b.Fee
	e.FeePerCU = score.FeePerCU(b.Fee, b.CUs)
	if ex.model != nil {
		// The daemon's model policy: IPFactor × SignerFactor (Forward),
		// times fee per CU.
		m := ex.model.IPFactor(model.IPOf(ex.addr)) * ex.model.SignerFactor(model.Signer(info.Payer))
		s := score.Score(m, b.Fee, b.CUs)
		e.ModelScore, e.Score = &m, &s
	}
	return e
}
