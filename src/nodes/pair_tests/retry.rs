//! Retry receipts and the plaintext cache (`Device::open`, `answer_retry`,
//! `resend_retry_receipts`): a copy that does not decrypt leaves a placeholder and asks its
//! sender to encrypt it again; the sender does, on a fresh session, from its bounded cache, at
//! most five times; the hub holds a receipt for an offline sender.
//!
//! A reinstall of the recipient (a new identity) is what breaks the sender's session here, as
//! in the `identity_reset` fault.

use super::*;
use crate::metrics::ledger::{DecryptReason, RetryRefusal};
use crate::metrics::LedgerEvent;
use crate::nodes::pair::{digest, Kind, Setup, S};
use crate::nodes::TimerKind;
use crate::wire::MsgId;

/// `A` and `B` have a session (one message shown); `B` reinstalls; `A` writes `m1` on the old
/// session and the hub has sent it to `B` (in flight, ahead of `A`'s SubmitAck).
fn broken_session(s: Setup) -> (Pair, MsgId) {
    let mut p = two_users(s);
    p.connect(&[A, B]);
    p.send(A, UB);
    p.deliver_all();
    assert_eq!(p.shown(B).len(), 1);
    p.reinstall(B);
    let m1 = p.send(A, UB);
    p.deliver();
    assert!(p.in_flight()[0].is_for(Kind::Deliver, m1));
    (p, m1)
}

fn refused(msg: MsgId, reason: RetryRefusal) -> impl Fn(&LedgerEvent) -> bool {
    move |e| {
        *e == LedgerEvent::RetryRefused {
            msg,
            device: B,
            reason,
        }
    }
}

#[test]
fn an_undecryptable_copy_leaves_a_placeholder_and_asks_for_a_retry() {
    let (mut p, m1) = broken_session(Setup::gatekeeper(&[1, 1]));
    let r = p.deliver();
    assert_eq!(r.node, dev(B));
    assert_eq!(
        r.events,
        vec![LedgerEvent::DecryptFailed {
            msg: m1,
            device: B,
            reason: DecryptReason::StaleSession
        }]
    );
    let sent: Vec<_> = r.sent.iter().map(|h| (h.kind(), h.to)).collect();
    assert_eq!(
        sent,
        vec![(Kind::DeliverAck, HUB), (Kind::RetryReceipt, HUB)],
        "acked first, then the receipt"
    );
    assert_eq!(r.sent[1].attempt(), Some(1));
    assert_eq!(r.armed, vec![(secs(1), TimerKind::OutboxRetry)]);
}

#[test]
fn the_sender_re_encrypts_on_a_fresh_session_and_the_placeholder_fills() {
    let (mut p, m1) = broken_session(Setup::gatekeeper(&[1, 1]));
    p.deliver_all();
    let again: Vec<_> = p
        .sent(Kind::Submit)
        .into_iter()
        .filter(|h| h.attempt() == Some(1))
        .cloned()
        .collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].msg(), Some(m1));
    assert_eq!(
        again[0].only_for(),
        Some(B),
        "for the device that asked only"
    );
    assert_eq!(again[0].prekey_for(B), Some(true), "a new session");
    assert_eq!(p.shown(B)[1], (m1, 1, true), "late, at its place");
    assert_eq!(
        p.count(|e| matches!(e, LedgerEvent::Accepted { msg, .. } if *msg == m1)),
        1,
        "a re-encryption is no new message"
    );
    assert_eq!(p.queued(HUB), 0);
}

#[test]
fn a_retry_receipt_for_an_offline_sender_waits_for_its_connect() {
    let (mut p, m1) = broken_session(Setup::gatekeeper(&[1, 1]));
    p.deliver_where(|h| h.is(Kind::SubmitAck));
    p.offline(A);
    p.deliver_where(|h| h.is(Kind::Disconnect));
    p.deliver(); // B fails to decrypt
    p.deliver_where(|h| h.is(Kind::DeliverAck));
    let held = p.deliver_where(|h| h.is(Kind::RetryReceipt));
    assert_eq!(held.node, HUB);
    assert!(held.sent.is_empty(), "A is offline: held");
    p.online(A);
    let connect = p.deliver();
    let kinds: Vec<_> = connect.sent.iter().map(|h| (h.kind(), h.to)).collect();
    assert_eq!(
        kinds,
        vec![(Kind::ConnectAck, dev(A)), (Kind::RetryReceipt, dev(A))]
    );
    p.deliver_all();
    assert_eq!(p.shown(B)[1], (m1, 1, true));
}

#[test]
fn re_encryption_stops_after_five_attempts() {
    let (mut p, m1) = broken_session(Setup::gatekeeper(&[1, 1]));
    // B reinstalls again before each re-encrypted copy arrives: every one fails.
    while let Some(h) = p.in_flight().front() {
        let retry_for_b = h.is(Kind::Deliver) && h.to == dev(B) && h.attempt() > Some(0);
        if retry_for_b {
            p.reinstall(B);
        }
        p.deliver();
    }
    let attempts: Vec<_> = p
        .sent(Kind::Submit)
        .iter()
        .filter(|h| h.msg() == Some(m1))
        .map(|h| h.attempt())
        .collect();
    assert_eq!(attempts, [0, 1, 2, 3, 4, 5].map(Some));
    let asked: Vec<_> = p
        .sent(Kind::RetryReceipt)
        .iter()
        .filter(|h| h.from == dev(B))
        .map(|h| h.attempt())
        .collect();
    assert_eq!(asked, [1, 2, 3, 4, 5, 6].map(Some));
    let exhausted = refused(m1, RetryRefusal::Exhausted);
    let by: Vec<_> = p
        .ledger()
        .iter()
        .filter(|r| exhausted(&r.event))
        .map(|r| r.node)
        .collect();
    assert_eq!(by, vec![dev(A)], "the sender refuses");
    let failed =
        |e: &LedgerEvent| matches!(e, LedgerEvent::DecryptFailed { msg, .. } if *msg == m1);
    assert_eq!(p.count(failed), 6);
    assert_eq!(p.shown(B).len(), 1, "m1 never shows");
}

#[test]
fn an_evicted_plaintext_cannot_be_sent_again() {
    let mut s = Setup::gatekeeper(&[1, 1]);
    s.plaintext_cache_max = 2;
    let mut p = two_users(s);
    p.connect(&[A, B]);
    let m0 = p.send(A, UB);
    p.deliver_all();
    p.lose(|h| h.is(Kind::Push));
    p.offline(B);
    let m = [p.send(A, UB), p.send(A, UB), p.send(A, UB)];
    p.deliver_all();
    assert_eq!(p.queued(HUB), 3);
    p.reinstall(B);
    p.heal();
    p.online(B);
    p.deliver_all();
    assert_eq!(p.count(refused(m[0], RetryRefusal::Evicted)), 1);
    let again: Vec<_> = p
        .sent(Kind::Submit)
        .iter()
        .filter(|h| h.attempt() == Some(1))
        .map(|h| h.msg())
        .collect();
    assert_eq!(again, vec![Some(m[1]), Some(m[2])], "the two still cached");
    let mut shown = p.shown_msgs(B);
    shown.sort();
    assert_eq!(shown, vec![m0, m[1], m[2]]);
}

#[test]
fn a_lost_retry_receipt_is_sent_again_at_most_ten_times() {
    let (mut p, m1) = broken_session(Setup::gatekeeper(&[1, 1]));
    p.lose(|h| h.is(Kind::RetryReceipt));
    p.deliver_all();
    while p.timer(dev(B), TimerKind::OutboxRetry).is_some() {
        p.fire_timer();
    }
    let receipts = p.sent(Kind::RetryReceipt);
    assert_eq!(receipts.len(), 10, "RETRY_RECEIPT_SENDS_MAX");
    assert_eq!(p.lost().len(), 10);
    assert!(receipts
        .iter()
        .all(|h| h.msg() == Some(m1) && h.attempt() == Some(1) && h.from == dev(B)));
    assert!(
        p.timers_of(dev(B)).is_empty(),
        "given up: the device is idle"
    );
}

#[test]
fn a_re_encrypted_copy_is_accepted_once_per_attempt() {
    let (mut p, m1) = broken_session(Setup::gatekeeper(&[1, 1]));
    let retry_submit = |p: &Pair| {
        p.in_flight()
            .front()
            .is_some_and(|h| h.is(Kind::Submit) && h.attempt() == Some(1))
    };
    while !retry_submit(&p) {
        p.deliver();
    }
    p.duplicate_next();
    let first = p.deliver();
    assert_eq!(
        (first.count(Kind::Deliver), first.count(Kind::SubmitAck)),
        (1, 1)
    );
    let second = p.deliver();
    assert_eq!(
        (second.count(Kind::Deliver), second.count(Kind::SubmitAck)),
        (0, 1)
    );
    p.deliver_all();
    assert_eq!(p.shown(B)[1], (m1, 1, true));
    assert_eq!(p.outbox_len(A), 0);
    let copies = p.sent(Kind::Deliver);
    let retried = copies.iter().filter(|h| h.attempt() == Some(1)).count();
    assert_eq!(retried, 1, "not even once the first is acked");
    assert_eq!(p.queued(HUB), 0);
}

#[test]
fn with_real_crypto_the_re_encrypted_copy_decrypts_to_what_was_written() {
    let mut s = Setup::gatekeeper(&[1, 1]);
    s.real_crypto = true;
    let mut p = two_users(s);
    p.connect(&[A, B]);
    let m0 = p.try_send(A, UB, b"before the reinstall").expect("room");
    p.deliver_all();
    assert_eq!(p.shown_digest(B, m0), Some(digest(b"before the reinstall")));
    p.reinstall(B);
    let m1 = p.try_send(A, UB, b"after the reinstall").expect("room");
    p.deliver_all();
    let stale = LedgerEvent::DecryptFailed {
        msg: m1,
        device: B,
        reason: DecryptReason::StaleSession,
    };
    assert_eq!(p.count(|e| *e == stale), 1);
    assert_eq!(p.shown(B)[1], (m1, 1, true));
    assert_eq!(p.shown_digest(B, m1), Some(digest(b"after the reinstall")));
}

/// Issue 20: over the key directory's limit, the sender waits for the bundle permit before its
/// re-encryption leaves, and neither its retry timer nor anything else sends it early.
#[test]
fn a_resend_waiting_for_its_bundle_permit_leaves_when_the_permit_comes() {
    let mut s = Setup::gatekeeper(&[1, 1]);
    s.bundle_fetch_limit = Some(crate::scenario::BundleFetchLimit {
        burst: 1,
        per_hour: 360.0, // a permit every 10 s per pair
    });
    let (mut p, m1) = broken_session(s);
    // B cannot open m1 and asks again; A renews the session with a second fetch of B's bundle
    // within the 10 s: its re-encryption waits for the permit.
    let resend_at = loop {
        let r = p.deliver();
        let resend = r
            .sent
            .iter()
            .find(|h| r.node == dev(A) && h.is_for(Kind::Submit, m1));
        if let Some(h) = resend {
            break h.at;
        }
    };
    assert_eq!(resend_at.as_nanos() / S, 10, "sent when the permit comes");
    // A's retry timer fires meanwhile (1 s, 3 s, 7 s): nothing of m1 leaves early.
    while let Some((node, at, _)) = p.next_timer() {
        if at.as_nanos() >= 10 * S {
            break;
        }
        let r = p.fire_timer();
        let early = r
            .sent
            .iter()
            .any(|h| h.is_for(Kind::Submit, m1) && h.at < resend_at);
        assert!(!early, "{node:?} sent m1 at {at:?}, before its permit");
    }
    p.run_until(secs(12));
    assert!(p.shown_msgs(B).contains(&m1), "shown once the permit came");
}
