package sidecar

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/solqos/qos/channels"
)

// computeBudgetID is ComputeBudget111111111111111111111111111111.
var computeBudgetID = mustKey("0306466fe5211732ffecadba72c39be7bc8ce5bbc5f7126b2c439b3a40000000")

func mustKey(h string) [32]byte {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		panic("bad key " + h)
	}
	return [32]byte(b)
}

// tx describes a legacy transaction for the loop tests: one signature, a
// fee payer, SetComputeUnitLimit, SetComputeUnitPrice and one instruction
// to a program whose data is nonce (making each transaction unique).
type tx struct {
	payer [32]byte
	sig   [64]byte
	limit uint32
	price uint64
	nonce uint64
}

// encode appends the transaction's wire bytes to dst.
func (t *tx) encode(dst []byte) []byte {
	dst = append(dst, 1)
	dst = append(dst, t.sig[:]...)
	dst = append(dst, 1, 0, 2) // 1 required signature, 0 readonly signed, 2 readonly unsigned
	dst = append(dst, 3)
	dst = append(dst, t.payer[:]...)
	dst = append(dst, computeBudgetID[:]...)
	prog := [32]byte{9, 9, 9}
	dst = append(dst, prog[:]...)
	var blockhash [32]byte
	dst = append(dst, blockhash[:]...)
	dst = append(dst, 3) // instructions
	dst = append(dst, 1, 0, 5, 2)
	dst = binary.LittleEndian.AppendUint32(dst, t.limit)
	dst = append(dst, 1, 0, 9, 3)
	dst = binary.LittleEndian.AppendUint64(dst, t.price)
	dst = append(dst, 2, 0, 8)
	dst = binary.LittleEndian.AppendUint64(dst, t.nonce)
	return dst
}

// packet builds a packet record of t from addr.
func (t *tx) packet(tb testing.TB, addr netip.Addr) channels.Packet {
	tb.Helper()
	var p channels.Packet
	var buf [channels.PacketDataSize]byte
	if !p.SetData(t.encode(buf[:0])) {
		tb.Fatal("transaction too large")
	}
	p.SetAddr(addr)
	p.SetPort(8001)
	return p
}
