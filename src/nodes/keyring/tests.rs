//! Sessions set up before the clock (`[e2ee] sessions = "established"`) against sessions set
//! up at the first message, in both crypto modes.

use super::*;
use crate::wire::Ciphertext;

const HELLO: &[u8] = b"a message of some forty bytes, give or take";

fn keyring(mode: CryptoMode, established: bool) -> (Keyring, KeyDirectory) {
    let k = Keyring::new(4, mode, Protocol::X3dh, 7, CostTable::default())
        .with_established_sessions(established);
    (k, KeyDirectory::new(4, 100, 10))
}

/// Gatekeeper device `from` sealing at t = 0.
fn sealer(dir: &mut KeyDirectory, from: u32) -> Sealer<'_> {
    Sealer {
        now: SimTime::ZERO,
        from: DeviceId(from),
        runner: Runner::GatekeeperDevice,
        directory: dir,
    }
}

/// `from` seals `HELLO` to `to`, and `to` opens it: (prekey header, seal ns, open ns).
fn exchange(k: &mut Keyring, dir: &mut KeyDirectory, from: u32, to: u32) -> (bool, u64, u64) {
    let mut by = sealer(dir, from);
    let (bytes, seal, sealed_ns) = k.seal(&mut by, DeviceId(to), HELLO, None);
    assert_eq!(bytes.is_some(), k.mode() == CryptoMode::Real);
    let ct = Ciphertext {
        len: HELLO.len() as u32,
        bytes,
        seal,
    };
    let (plain, opened_ns) = k
        .open(
            DeviceId(to),
            DeviceId(from),
            &ct,
            None,
            Runner::GatekeeperDevice,
        )
        .expect("the message opens");
    if k.mode() == CryptoMode::Real {
        assert_eq!(plain.as_deref(), Some(HELLO));
    }
    (seal.prekey, sealed_ns, opened_ns)
}

#[test]
fn established_sessions_charge_only_the_ratchet_and_take_no_prekey() {
    for mode in [CryptoMode::Real, CryptoMode::Modeled] {
        let (mut k, mut dir) = keyring(mode, true);
        let encrypt = k.cost_ns(Op::RatchetEncrypt, HELLO.len() as u64);
        let decrypt = k.cost_ns(Op::RatchetDecrypt, HELLO.len() as u64);
        for (from, to) in [(0, 1), (1, 0), (0, 1), (2, 0)] {
            let (prekey, sealed, opened) = exchange(&mut k, &mut dir, from, to);
            assert!(
                !prekey,
                "{mode:?}: no prekey header on an established session"
            );
            assert_eq!(
                (sealed, opened),
                (encrypt, decrypt),
                "{mode:?} {from}->{to}"
            );
        }
        let ops: Vec<Op> = k.counts.by_node().keys().map(|(_, op)| *op).collect();
        assert_eq!(
            ops,
            [Op::RatchetEncrypt, Op::RatchetDecrypt],
            "{mode:?}: the set-up is off the books"
        );
        assert_eq!(
            dir.bundles_served, 0,
            "{mode:?}: no bundle fetched on the path"
        );
    }
}

#[test]
fn first_message_sessions_pay_keys_and_x3dh_on_the_path() {
    for mode in [CryptoMode::Real, CryptoMode::Modeled] {
        let (mut k, mut dir) = keyring(mode, false);
        let encrypt = k.cost_ns(Op::RatchetEncrypt, HELLO.len() as u64);
        let (prekey, sealed, _) = exchange(&mut k, &mut dir, 0, 1);
        assert!(prekey, "{mode:?}");
        assert!(
            sealed > encrypt + k.cost_ns(Op::X3dhInitiate, 0) - 1,
            "{mode:?}"
        );
        // The reply confirms the session: the next message has no prekey header.
        let (reply_prekey, _, _) = exchange(&mut k, &mut dir, 1, 0);
        assert!(
            !reply_prekey,
            "{mode:?}: the responder never sends a prekey header"
        );
        let (prekey, sealed, _) = exchange(&mut k, &mut dir, 0, 1);
        assert_eq!((prekey, sealed), (false, encrypt), "{mode:?}");
        assert_eq!(dir.bundles_served, 1, "{mode:?}");
    }
}

#[test]
fn an_established_session_renewed_later_is_set_up_on_the_path() {
    let (mut k, mut dir) = keyring(CryptoMode::Real, true);
    exchange(&mut k, &mut dir, 0, 1);
    k.reset_identity(DeviceId(1));
    // The sender learns of the new identity through a retry receipt, and renews.
    k.drop_session(DeviceId(0), DeviceId(1));
    let (prekey, sealed, _) = exchange(&mut k, &mut dir, 0, 1);
    assert!(prekey, "the renewed session starts with X3DH");
    assert!(sealed >= k.cost_ns(Op::X3dhInitiate, 0));
    assert_eq!(dir.bundles_served, 1);
}

/// Issue 20: an honest device over the key directory's limit waits for the permit, and its
/// message leaves later by exactly what the token bucket predicts; the wait is not CPU time.
#[test]
fn an_honest_fetch_over_the_limit_waits_for_the_permit_the_bucket_predicts() {
    let limit = crate::scenario::BundleFetchLimit {
        burst: 2,
        per_hour: 3600.0, // one permit a second
    };
    let held = |limited: bool| {
        let (mut k, dir) = keyring(CryptoMode::Modeled, false);
        let mut dir = dir.with_fetch_limit(limited.then_some(limit));
        let mut out = Vec::new();
        for _ in 0..3 {
            // The same peer three times at t = 0: each renewal fetches its bundle again.
            let mut by = sealer(&mut dir, 0);
            let (_, _, ns) = k.seal(&mut by, DeviceId(1), HELLO, None);
            // The CPU time, then the permit wait the device holds the message for.
            out.push(ns + k.take_wait());
            k.drop_session(DeviceId(0), DeviceId(1));
        }
        (
            out,
            k.counts.bundle_fetch_wait_ns,
            k.counts.bundle_fetches_limited_honest,
        )
    };
    let (free, free_wait, free_limited) = held(false);
    let (limited, wait, over) = held(true);
    // Two permits at once, the third a second later: the third message waits 1 s.
    assert_eq!(limited[..2], free[..2]);
    assert_eq!(limited[2], free[2] + 1_000_000_000);
    assert_eq!((wait, over), (1_000_000_000, 1));
    assert_eq!((free_wait, free_limited), (0, 0));
}

/// The seals of one message fetch side by side: the message waits for the last permit, not
/// for the sum of its seals' waits.
#[test]
fn a_message_sealed_for_several_devices_waits_for_its_last_permit() {
    let limit = crate::scenario::BundleFetchLimit {
        burst: 1,
        per_hour: 3600.0, // one permit a second
    };
    let (mut k, dir) = keyring(CryptoMode::Modeled, false);
    let mut dir = dir.with_fetch_limit(Some(limit));
    for _ in 0..3 {
        let mut by = sealer(&mut dir, 0);
        let _ = k.seal(&mut by, DeviceId(1), HELLO, None);
        k.drop_session(DeviceId(0), DeviceId(1));
    }
    // Permits at 0, 1 s and 2 s: waits of 1 s and 2 s, the message ready at 2 s.
    assert_eq!(k.counts.bundle_fetch_wait_ns, 3_000_000_000);
    assert_eq!(k.take_wait(), 2_000_000_000);
    assert_eq!(k.take_wait(), 0, "taken once");
}

/// The receiver's work is filed under what the message carries (it learns that by decrypting),
/// beside the sender's: a voice note's decrypt and key exchange answer are `voice`, not control.
#[test]
fn the_receivers_work_is_filed_under_the_messages_kind() {
    let (mut k, mut dir) = keyring(CryptoMode::Modeled, false);
    let mut by = sealer(&mut dir, 0);
    let voice = Some(crate::scenario::ContentKind::Voice);
    let (bytes, seal, _) = k.seal(&mut by, DeviceId(1), HELLO, voice);
    let ct = Ciphertext {
        len: HELLO.len() as u32,
        bytes,
        seal,
    };
    k.open(DeviceId(1), DeviceId(0), &ct, None, Runner::PartnerDevice)
        .expect("opens");
    let filed: Vec<(&str, Op)> = k
        .counts
        .by_message()
        .keys()
        .filter(|(kind, _)| *kind != "control")
        .copied()
        .collect();
    for op in [
        Op::X3dhInitiate,
        Op::X3dhRespond,
        Op::RatchetEncrypt,
        Op::RatchetDecrypt,
    ] {
        assert!(
            filed.contains(&("voice", op)),
            "{op:?} under voice: {filed:?}"
        );
    }
    assert_eq!(super::content_of(super::content_code(voice)), voice);
    assert_eq!(super::content_of(super::content_code(None)), None);
}
