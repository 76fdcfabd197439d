package sim

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// The mock signature scheme. A signer's secret is derived from its public
// key, so anyone can check a signature — this is a stand-in for ed25519
// that costs two xxhash passes, not cryptography:
//
//	secret    = XXH64(pubkey) ⊕ secretLabel
//	h         = XXH64_seed=secret(message)
//	sig[8i:]  = mix(h ⊕ secret + i·φ)   for i = 0..7 (u64 little-endian)
//
// A bad-signature agent signs with secret ⊕ badSecret, so its signatures
// look as random as good ones and always fail verification.
const (
	secretLabel = 0x316d69732d736f71 // "qos-sim1"
	badSecret   = 0x5eed_bad5_19_5e_ed_ba
	// freshLabel seeds the fee payers of fresh_signers agents.
	freshLabel = 0x66726573_68706179 // "freshpay"
	golden     = 0x9e3779b97f4a7c15
)

// secretOf returns the mock secret of the signer with public key pub.
func secretOf(pub []byte) uint64 { return xxhash.Sum64(pub) ^ secretLabel }

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// signer makes and checks mock signatures. Its zero value is ready; it is
// not safe for concurrent use (it reuses one digest).
type signer struct {
	d xxhash.Digest
}

// sign writes the 64-byte signature of msg under secret into sig.
// REQUIRES: len(sig) >= 64.
func (s *signer) sign(secret uint64, msg, sig []byte) {
	s.d.ResetWithSeed(secret)
	_, _ = s.d.Write(msg)
	h := s.d.Sum64()
	sig = sig[:64]
	for i := 0; i < 8; i++ {
		binary.LittleEndian.PutUint64(sig[8*i:], mix64(h^secret+uint64(i)*golden))
	}
}

// check reports whether sig is the signature of msg under secret.
func (s *signer) check(secret uint64, msg, sig []byte) bool {
	if len(sig) < 64 {
		return false
	}
	s.d.ResetWithSeed(secret)
	_, _ = s.d.Write(msg)
	h := s.d.Sum64()
	for i := 0; i < 8; i++ {
		if binary.LittleEndian.Uint64(sig[8*i:]) != mix64(h^secret+uint64(i)*golden) {
			return false
		}
	}
	return true
}

// verify is the mock sigverify: like agave's, it reads only what it needs
// (signature count, version, header, static keys) and checks signature i
// against static key i over the message bytes. Anything it cannot read,
// a header whose required-signature count differs from the signature
// count, or a wrong signature fails. It never allocates.
func (s *signer) verify(data []byte) bool {
	if len(data) < 1 {
		return false
	}
	nsig := int(data[0])
	if nsig < 1 || nsig > 12 {
		return false
	}
	msg := 1 + nsig*64
	off := msg
	if off >= len(data) {
		return false
	}
	if data[off] >= 0x80 {
		if data[off] != 0x80 {
			return false
		}
		off++
	}
	if off+4 > len(data) {
		return false
	}
	required, nkeys := int(data[off]), int(data[off+3])
	off += 4
	if required != nsig || nkeys < nsig || off+nkeys*32 > len(data) {
		return false
	}
	for i := 0; i < nsig; i++ {
		key := data[off+32*i : off+32*i+32]
		if !s.check(secretOf(key), data[msg:], data[1+64*i:1+64*i+64]) {
			return false
		}
	}
	return true
}
