package pack

import (
	"errors"
	"math/bits"

	"github.com/solqos/qos/score"
)

// Pubkey is a 32-byte account address.
type Pubkey = [32]byte

// MaxTxLocks is the most accounts one transaction may lock: Agave's
// MAX_TX_ACCOUNT_LOCKS (128); a transaction locking more fails with
// TOO_MANY_ACCOUNT_LOCKS, so the scheduler refuses it before dispatch.
// Read from agave v4.0.0-rc.0 (8e3bcf0c) accounts-db/src/account_locks.rs
// (validate_account_locks) and runtime-transaction's use of it.
const MaxTxLocks = 128

// Keys is the lock set of one transaction: the accounts it writes,
// then the accounts it only reads, each a 32-byte key. It is a fixed
// 4 KiB array so one Keys can be reused for every transaction without
// allocating; fill it with FromView (or Reset and Add).
type Keys struct {
	keys [MaxTxLocks]Pubkey
	n    uint16 // keys in use
	nw   uint16 // keys[:nw] are writable
	over bool   // more than MaxTxLocks were added
}

// ErrTooManyLocks is returned by Keys.FromView (and reported by
// Keys.Overflow) when a transaction references more than MaxTxLocks
// accounts; Agave refuses it with TOO_MANY_ACCOUNT_LOCKS.
var ErrTooManyLocks = errors.New("pack: transaction locks more than 128 accounts")

// ErrNoTransaction is returned by Keys.FromView and EstimateCost when the
// view's last Parse failed or parsed other bytes.
var ErrNoTransaction = errors.New("pack: the view holds no transaction parsed from these bytes")

// ErrUnresolvedLookups is returned by Keys.FromView when the resolved
// lookup keys given do not match the transaction's address-table lookup
// indexes (none given for a v0 transaction with lookups, or a different
// number): its lock set is then unknown, and a batch holding it could
// collide with another worker's in the validator's account locks
// (ACCOUNT_IN_USE). Resolve its lookups first (a CHECK with
// LOAD_ADDRESS_LOOKUP_TABLES).
var ErrUnresolvedLookups = errors.New("pack: the transaction's address-table lookups are not resolved: its lock set is unknown")

// Reset empties k.
func (k *Keys) Reset() { k.n, k.nw, k.over = 0, 0, false }

// Len returns the number of keys; Writable and Readonly split them.
func (k *Keys) Len() int { return int(k.n) }

// NumWritable returns the number of write-locked keys.
func (k *Keys) NumWritable() int { return int(k.nw) }

// Overflow reports whether more than MaxTxLocks keys were added.
func (k *Keys) Overflow() bool { return k.over }

// Key returns key i (writable ones first). REQUIRES: 0 ≤ i < Len().
func (k *Keys) Key(i int) *Pubkey { return &k.keys[i] }

// Writable reports whether key i is write-locked.
func (k *Keys) Writable(i int) bool { return i < int(k.nw) }

// AddWritable appends a write-locked key. All writable keys must be added
// before the first readonly one; a writable key added after a readonly
// one is inserted before the readonly keys (order among keys does not
// matter to locking).
func (k *Keys) AddWritable(key *Pubkey) {
	if k.n >= MaxTxLocks {
		k.over = true
		return
	}
	if k.nw < k.n { // move the first readonly key to the end
		k.keys[k.n] = k.keys[k.nw]
	}
	k.keys[k.nw] = *key
	k.nw++
	k.n++
}

// AddReadonly appends a read-locked key.
func (k *Keys) AddReadonly(key *Pubkey) {
	if k.n >= MaxTxLocks {
		k.over = true
		return
	}
	k.keys[k.n] = *key
	k.n++
}

// FromView fills k with the lock set of the parsed transaction v (data
// being the bytes v parsed) and the accounts its address-table lookups
// resolved to: resolvedW and resolvedR hold the writable and readonly
// lookup keys as consecutive 32-byte keys, in the order Agave resolves
// them (all writable lookup indexes, then all readonly ones, the layout of
// a CheckResponse's resolved_pubkeys split at the transaction's writable
// lookup count). Static key i is writable by the message header
// (i < required−readonlySigned, or required ≤ i < keys−readonlyUnsigned)
// unless Agave demotes it: a reserved account key (sysvars, builtin
// programs; see reservedKey) or a key called as a program while the
// upgradeable loader is not among the keys. Resolved writable lookup keys
// are demoted by the same reserved-key rule.
//
// A v0 transaction with lookups must come with exactly its resolved keys
// (as many writable and readonly ones as it has lookup indexes):
// without them its lock set is unknown, the scheduler could not see its
// conflicts on those accounts, and Agave would answer ACCOUNT_IN_USE
// whenever another worker's batch holds one of them. So FromView
// refuses it (ErrUnresolvedLookups) rather than return a partial set.
// Agave's own schedulers never meet the case: its receive_and_buffer
// resolves every lookup against the root bank before a transaction
// enters the container (anza-xyz/agave core/src/banking_stage/
// transaction_scheduler/receive_and_buffer.rs translate_to_runtime_view,
// read in the code index's copies of the 4.x line).
//
// It returns ErrNoTransaction when v holds no transaction parsed from
// data, ErrTooManyLocks when the transaction references more than
// MaxTxLocks accounts, or ErrUnresolvedLookups. It never allocates.
func (k *Keys) FromView(v *score.View, data []byte, resolvedW, resolvedR []byte) error {
	k.Reset()
	if v.Result() != score.OK || v.Size() != len(data) {
		return ErrNoTransaction
	}
	nkeys := v.NumStaticKeys()
	nw, nr := v.NumLookupAccounts()
	if nkeys+nw+nr > MaxTxLocks {
		k.over = true
		return ErrTooManyLocks
	}
	if len(resolvedW) != nw*32 || len(resolvedR) != nr*32 {
		return ErrUnresolvedLookups
	}
	// Program indexes (static keys are < 38, so one word holds them all).
	var progs uint64
	it := v.Instructions()
	var in score.Instruction
	for it.Next(data, &in) {
		if int(in.ProgramIndex) < nkeys {
			progs |= 1 << in.ProgramIndex
		}
	}
	upgradeable := false
	for i := range nkeys {
		if [32]byte(v.StaticKey(data, i)) == bpfLoaderUpgradeable {
			upgradeable = true
			break
		}
	}
	if upgradeable {
		progs = 0
	}
	nreq, nros, nrou := v.NumRequiredSignatures(), v.NumReadonlySigned(), v.NumReadonlyUnsigned()
	for i := range nkeys {
		key := (*Pubkey)(v.StaticKey(data, i))
		w := i < nreq-nros || (i >= nreq && i < nkeys-nrou)
		if w && (progs&(1<<i) != 0 || reservedKey(key)) {
			w = false
		}
		if w {
			k.AddWritable(key)
		} else {
			k.AddReadonly(key)
		}
	}
	for off := 0; off+32 <= len(resolvedW); off += 32 {
		key := (*Pubkey)(resolvedW[off : off+32])
		if reservedKey(key) {
			k.AddReadonly(key)
		} else {
			k.AddWritable(key)
		}
	}
	for off := 0; off+32 <= len(resolvedR); off += 32 {
		k.AddReadonly((*Pubkey)(resolvedR[off : off+32]))
	}
	return nil
}

// Well-known program ids and reserved keys, as base58, decoded once.
var (
	systemProgram        = mustKey("11111111111111111111111111111111")
	voteProgram          = mustKey("Vote111111111111111111111111111111111111111")
	bpfLoader            = mustKey("BPFLoader2111111111111111111111111111111111")
	bpfLoaderDeprecated  = mustKey("BPFLoader1111111111111111111111111111111111")
	bpfLoaderUpgradeable = mustKey("BPFLoaderUpgradeab1e11111111111111111111111")
	loaderV4             = mustKey("LoaderV411111111111111111111111111111111111")
	secp256r1Program     = mustKey("Secp256r1SigVerify1111111111111111111111111")
)

// reservedKeys are the keys Agave's ReservedAccountKeys holds active
// without a pending feature (read from agave v4.0.0-rc.0 (8e3bcf0c)
// reserved-account-keys/src/lib.rs, RESERVED_ACCOUNTS): a writable
// request on one is demoted to a read lock. secp256r1 is left out: it is
// reserved only once its feature is active, and treating a key as
// writable when Agave demotes it only costs parallelism, never a
// conflict.
var reservedKeys = func() map[Pubkey]struct{} {
	m := make(map[Pubkey]struct{})
	for _, s := range []string{
		"AddressLookupTab1e1111111111111111111111111",
		"BPFLoader2111111111111111111111111111111111",
		"BPFLoader1111111111111111111111111111111111",
		"BPFLoaderUpgradeab1e11111111111111111111111",
		"ComputeBudget111111111111111111111111111111",
		"Config1111111111111111111111111111111111111",
		"Ed25519SigVerify111111111111111111111111111",
		"Feature111111111111111111111111111111111111",
		"LoaderV411111111111111111111111111111111111",
		"KeccakSecp256k11111111111111111111111111111",
		"StakeConfig11111111111111111111111111111111",
		"Stake11111111111111111111111111111111111111",
		"11111111111111111111111111111111",
		"Vote111111111111111111111111111111111111111",
		"ZkE1Gama1Proof11111111111111111111111111111",
		"ZkTokenProof1111111111111111111111111111111",
		"SysvarC1ock11111111111111111111111111111111",
		"SysvarEpochRewards1111111111111111111111111",
		"SysvarEpochSchedu1e111111111111111111111111",
		"SysvarFees111111111111111111111111111111111",
		"Sysvar1nstructions1111111111111111111111111",
		"SysvarLastRestartS1ot1111111111111111111111",
		"SysvarRecentB1ockHashes11111111111111111111",
		"SysvarRent111111111111111111111111111111111",
		"SysvarRewards111111111111111111111111111111",
		"SysvarS1otHashes111111111111111111111111111",
		"SysvarS1otHistory11111111111111111111111111",
		"SysvarStakeHistory1111111111111111111111111",
		"NativeLoader1111111111111111111111111111111",
		"Sysvar1111111111111111111111111111111111111",
	} {
		m[mustKey(s)] = struct{}{}
	}
	return m
}()

// reservedFirst[b] is set when some reserved key starts with byte b, so
// most keys are ruled out without a map lookup.
var reservedFirst = func() (t [256]bool) {
	for k := range reservedKeys {
		t[k[0]] = true
	}
	return t
}()

// ReservedKey reports whether key is one of Agave's reserved account keys
// (builtin programs and sysvars: reservedKeys), a write lock on which
// Agave demotes to a read lock.
func ReservedKey(key *Pubkey) bool { return reservedKey(key) }

// IsUpgradeableLoader reports whether key is the upgradeable BPF loader,
// whose presence among a transaction's keys keeps its invoked programs
// writable (see FromView).
func IsUpgradeableLoader(key *Pubkey) bool { return *key == bpfLoaderUpgradeable }

// reservedKey reports whether Agave demotes a write lock on key.
func reservedKey(key *Pubkey) bool {
	if !reservedFirst[key[0]] {
		return false
	}
	_, ok := reservedKeys[*key]
	return ok
}

// mustKey decodes a base58 program id written in this package; it panics
// on a malformed constant (a programming error caught by any test run,
// never reachable from input).
func mustKey(s string) Pubkey {
	k, ok := decodeBase58Key(s)
	if !ok {
		panic("pack: bad base58 key constant " + s)
	}
	return k
}

// decodeBase58Key decodes a base58 (Bitcoin alphabet) string of exactly
// 32 bytes.
func decodeBase58Key(s string) (Pubkey, bool) {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	var out Pubkey
	// Big number in 8 little-endian 32-bit limbs.
	var limbs [8]uint32
	zeros := 0
	for i := 0; i < len(s) && s[i] == '1'; i++ {
		zeros++
	}
	for i := 0; i < len(s); i++ {
		d := -1
		for j := 0; j < len(alphabet); j++ {
			if alphabet[j] == s[i] {
				d = j
				break
			}
		}
		if d < 0 {
			return out, false
		}
		carry := uint64(d)
		for j := range limbs {
			v := uint64(limbs[j])*58 + carry
			limbs[j] = uint32(v)
			carry = v >> 32
		}
		if carry != 0 {
			return out, false
		}
	}
	for j := range limbs {
		w := bits.ReverseBytes32(limbs[j])
		o := 32 - 4*(j+1)
		out[o], out[o+1], out[o+2], out[o+3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
	}
	lead := 0
	for lead < 32 && out[lead] == 0 {
		lead++
	}
	if lead != zeros && !(zeros == 32 && lead == 32) {
		return out, false
	}
	return out, true
}
