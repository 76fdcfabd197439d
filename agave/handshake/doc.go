// Package handshake is the Unix-socket logon between an external scheduler
// and Agave's scheduler-bindings server (<ledger>/scheduler_bindings.ipc):
// the client (Dial) and, for tests and the stand-in validator, the server
// (Listen, Accept), for every bindings.Profile.
//
// # Wire format
//
// Client → server: one stream write of exactly 1024 bytes:
//
//	HandshakeVersion profiles (4.0, 4.1, 4.3):  VERSION u64 @0, ClientLogon @8, zeros
//	HandshakeTuple profile (4.4):  ProtocolVersions (4×u64) @0, ClientLogon @32, zeros
//
//	ClientLogon, 64 B (VERSION 3, 4): worker_count @0, allocator_size @8,
//	  allocator_handles @16, tpu_to_pack_capacity @24, progress_tracker_capacity @32,
//	  pack_to_worker_capacity @40, worker_to_pack_capacity @48, flags u16 @56
//	ClientLogon, 80 B (VERSION 5): the 64-byte fields, then
//	  pack_to_check_worker_capacity @64, check_worker_to_pack_capacity @72
//	ClientLogon, 88 B (handshake 6): worker_count @0, check_worker_count @8,
//	  allocator_size @16, allocator_handles @24, tpu_to_pack_capacity @32,
//	  progress_tracker_capacity @40, pack_to_worker_capacity @48,
//	  worker_to_pack_capacity @56, pack_to_check_worker_capacity @64,
//	  check_worker_to_pack_capacity @72, flags u64 @80
//
// Server → client on success: one sendmsg whose data is the byte 0x01 and
// whose single SCM_RIGHTS message carries the fds in this order:
//
//	allocator, tpu_to_pack, progress_tracker,
//	[pack_to_check_worker, check_worker_to_pack]   (profiles with CheckQueues)
//	pack_to_worker[0], worker_to_pack[0], …, pack_to_worker[n-1], worker_to_pack[n-1]
//
// On failure: 0x02, a length byte, and that many bytes of reason (Agave's
// error Display, truncated to 255 bytes), then the connection closes.
// The server reads the logon for at most 1 s and checks the version exactly,
// 1 ≤ worker_count ≤ 64, 1 ≤ check_worker_count ≤ 64 (4.4) and
// 1 ≤ allocator_handles ≤ 128.
//
// Sources (read, not run): agave v4.0.0-rc.0 (8e3bcf0c) and master 091bee17
// scheduling-utils/src/handshake/{shared,server,client}.rs; agave-sdk
// scheduler-handshake shared.rs 1c2a26aa, server.rs 1d705b20. The 88-byte
// logon is in flux upstream: shared.rs 4b28797b puts flags (u16) @64 and the
// check capacities @72/@80 instead; 1c2a26aa's order is used here. A still
// later shared.rs in the search index adds simulation workers (a 112-byte
// logon: simulation_worker_count @80, two simulation queue capacities,
// flags @104); a server of that kind refuses this 88-byte logon with a
// "Queue capacity …" reason rather than misreading it, since the
// simulation capacities arrive as zero.
package handshake
