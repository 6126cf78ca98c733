//! A device's media transfers, as a messaging app runs them: the upload of an encrypted blob
//! before its message is sent, and the download of a received message's blob after it shows.
//! Each transfer has one attempt in flight; a failed attempt (an error answer, or a dead
//! transfer noticed after [`DETECT_NS`](super::DETECT_NS)) is retried with exponential backoff
//! up to [`ATTEMPTS_MAX`] attempts, then given up and counted. A device that is offline when a
//! retry is due waits until it is online again (checked every [`OFFLINE_POLL_NS`]).
//!
//! The client keeps the instant its one timer is armed for and ignores a stale firing, like the
//! device's outbox timer.

use super::super::device::GroupSend;
use super::super::{Effects, TimerKind};
use super::pointer::Secret;
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::media::MediaCounters;
use crate::scenario::ContentKind;
use crate::wire::{BlobId, DeviceId, Frame, MediaFrame, MsgId, ProviderId, UserId};

/// Bound on attempts per transfer (the first included).
pub const ATTEMPTS_MAX: u8 = 8;
/// First wait before a retry; doubles per failed attempt up to [`BACKOFF_MAX_NS`].
pub const BACKOFF_INITIAL_NS: u64 = 1_000_000_000;
pub const BACKOFF_MAX_NS: u64 = 60_000_000_000;
/// How often an offline device checks whether it can resume a due transfer.
pub const OFFLINE_POLL_NS: u64 = 5_000_000_000;

/// A blob waiting to be stored before its message goes out.
#[derive(Clone, Debug)]
pub struct Upload {
    pub blob: BlobId,
    pub msg: MsgId,
    pub to_user: UserId,
    pub content: ContentKind,
    /// The message's plaintext (header, caption and pointer), sealed once the blob is stored.
    pub body: Vec<u8>,
    /// Blob bytes on the wire.
    pub len: u32,
    /// Recipient devices that will fetch it.
    pub fetches: u32,
    /// A group message's members, sealed with the group's Sender Key once the blob is stored
    /// (`to_user` is then the sender); `None` for a 1:1 message.
    pub group: Option<GroupSend>,
}

/// A received message's blob to fetch, verify and decrypt.
#[derive(Clone, Debug)]
pub struct Download {
    pub blob: BlobId,
    pub msg: MsgId,
    pub host: ProviderId,
    pub len: u32,
    pub content: ContentKind,
    /// When the message showed on this device (the download latency starts there).
    pub shown_at: SimTime,
    /// Key and digests from the decrypted plaintext (real crypto); `None` when modeled.
    pub secret: Option<Box<Secret>>,
    /// A group message's attachment (counted apart, as `group_media_*`).
    pub group: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    InFlight,
    RetryAt(SimTime),
    GiveUpAt(SimTime),
}

impl Phase {
    fn due(self) -> Option<SimTime> {
        match self {
            Phase::InFlight => None,
            Phase::RetryAt(t) | Phase::GiveUpAt(t) => Some(t),
        }
    }
}

#[derive(Clone, Debug)]
struct Transfer<T> {
    what: T,
    attempt: u8,
    phase: Phase,
}

/// A finished transfer, for the driver: a stored blob's message is sealed and sent, a fetched
/// blob is verified and decrypted.
#[derive(Clone, Debug)]
pub enum Done {
    Uploaded(Upload),
    Downloaded(Download),
}

#[derive(Clone, Debug)]
pub struct MediaClient {
    device: DeviceId,
    uploads: Vec<Transfer<Upload>>,
    downloads: Vec<Transfer<Download>>,
    timer_at: Option<SimTime>,
}

/// The wait before attempt `attempt + 1`.
fn backoff_ns(attempt: u8) -> u64 {
    BACKOFF_INITIAL_NS
        .saturating_mul(1u64 << attempt.min(32))
        .min(BACKOFF_MAX_NS)
}

impl MediaClient {
    /// The recipient of the message whose blob `blob` this device is uploading.
    pub fn upload_recipient(&self, blob: BlobId) -> Option<UserId> {
        let t = self.uploads.iter().find(|t| t.what.blob == blob)?;
        t.what.group.is_none().then_some(t.what.to_user)
    }

    pub fn new(device: DeviceId) -> Self {
        MediaClient {
            device,
            uploads: Vec::new(),
            downloads: Vec::new(),
            timer_at: None,
        }
    }

    // ---- getters

    /// Transfers not finished nor given up.
    pub fn pending(&self) -> usize {
        self.uploads.len() + self.downloads.len()
    }
    pub fn is_idle(&self) -> bool {
        self.pending() == 0
    }
    pub fn is_downloading(&self, blob: BlobId) -> bool {
        self.downloads.iter().any(|t| t.what.blob == blob)
    }

    // ---- mutators (transfers the app starts)

    /// Starts an upload to the device's own provider's store, after `delay_ns` (the encryption).
    pub fn upload(&mut self, up: Upload, delay_ns: u64, dir: &Directory, fx: &mut Effects) {
        let frame = upload_frame(self.device, &up, 0);
        fx.send_after(delay_ns, super::upload_route(dir, self.device), frame);
        self.uploads.push(Transfer {
            what: up,
            attempt: 0,
            phase: Phase::InFlight,
        });
    }

    /// Starts a download (once per blob: a second start while one runs is ignored).
    pub fn download(&mut self, down: Download, dir: &Directory, fx: &mut Effects) {
        if self.is_downloading(down.blob) {
            return;
        }
        let frame = fetch_frame(self.device, &down, 0);
        fx.send(super::fetch_route(dir, self.device, down.host), frame);
        self.downloads.push(Transfer {
            what: down,
            attempt: 0,
            phase: Phase::InFlight,
        });
    }

    // ---- inputs

    /// An answer arrived. An ack or the data finishes the transfer whatever attempt it answers
    /// (the store has the blob; the blob is here); an error fails the attempt it answers.
    pub fn handle_frame(
        &mut self,
        now: SimTime,
        frame: MediaFrame,
        fx: &mut Effects,
    ) -> Option<Done> {
        match frame {
            MediaFrame::UploadAck { blob, .. } => {
                let i = self.uploads.iter().position(|t| t.what.blob == blob)?;
                Some(Done::Uploaded(self.uploads.remove(i).what))
            }
            MediaFrame::Data { blob, .. } => {
                let i = self.downloads.iter().position(|t| t.what.blob == blob)?;
                Some(Done::Downloaded(self.downloads.remove(i).what))
            }
            MediaFrame::Error { blob, attempt, .. } => {
                self.failed(now, blob, attempt, 0, fx);
                None
            }
            // Requests never come to a device.
            MediaFrame::Upload { .. } | MediaFrame::Fetch { .. } | MediaFrame::Delete { .. } => {
                None
            }
        }
    }

    /// Attempt `attempt` of the transfer of `blob` failed; the device learns it `after_ns` from
    /// now. It is retried after a backoff, or given up past the attempt bound. The failure of
    /// an attempt that is no longer the current one changes nothing.
    pub fn failed(
        &mut self,
        now: SimTime,
        blob: BlobId,
        attempt: u8,
        after_ns: u64,
        fx: &mut Effects,
    ) {
        let noticed = now.plus(after_ns);
        let current = |phase: Phase, a: u8| phase == Phase::InFlight && a == attempt;
        let up = self
            .uploads
            .iter_mut()
            .map(|t| (t.what.blob, t.attempt, &mut t.phase));
        let down = self
            .downloads
            .iter_mut()
            .map(|t| (t.what.blob, t.attempt, &mut t.phase));
        let Some((_, _, phase)) = up
            .chain(down)
            .find(|(b, a, phase)| *b == blob && current(**phase, *a))
        else {
            return;
        };
        *phase = if attempt.saturating_add(1) >= ATTEMPTS_MAX {
            Phase::GiveUpAt(noticed)
        } else {
            Phase::RetryAt(noticed.plus(backoff_ns(attempt)))
        };
        self.arm(now, fx);
    }

    /// A transfer failed because the device itself went away (an answer reached it offline):
    /// it retries once online, with the usual backoff.
    pub fn interrupted(&mut self, now: SimTime, frame: MediaFrame, fx: &mut Effects) {
        self.failed(now, frame.blob(), frame.attempt(), 0, fx);
    }

    /// The retry timer: due transfers are sent again (or given up); an offline device puts them
    /// off until it is online.
    pub fn handle_timer(
        &mut self,
        now: SimTime,
        online: bool,
        dir: &Directory,
        stats: &mut MediaCounters,
        fx: &mut Effects,
    ) {
        if self.timer_at != Some(now) {
            return; // stale: re-armed since
        }
        self.timer_at = None;
        let device = self.device;
        self.uploads.retain_mut(|t| match step(t, now, online) {
            Step::Keep => true,
            Step::GiveUp => {
                stats.media_upload_failures += 1;
                false
            }
            Step::Resend => {
                stats.media_upload_retries += 1;
                let frame = upload_frame(device, &t.what, t.attempt);
                fx.send(super::upload_route(dir, device), frame);
                true
            }
        });
        self.downloads.retain_mut(|t| match step(t, now, online) {
            Step::Keep => true,
            Step::GiveUp => {
                stats.media_download_failures += 1;
                false
            }
            Step::Resend => {
                stats.media_download_retries += 1;
                let frame = fetch_frame(device, &t.what, t.attempt);
                fx.send(super::fetch_route(dir, device, t.what.host), frame);
                true
            }
        });
        self.arm(now, fx);
    }

    /// Arms the timer for the earliest due transfer, unless an earlier firing is armed already
    /// (it re-arms for the rest when it fires).
    fn arm(&mut self, now: SimTime, fx: &mut Effects) {
        let next = self
            .uploads
            .iter()
            .map(|t| t.phase)
            .chain(self.downloads.iter().map(|t| t.phase))
            .filter_map(Phase::due)
            .min();
        let Some(at) = next.map(|t| t.max(now)) else {
            return;
        };
        if self.timer_at.is_none_or(|armed| at < armed) {
            self.timer_at = Some(at);
            fx.timer(at, TimerKind::MediaRetry);
        }
    }
}

/// What the retry timer does with one transfer.
enum Step {
    Keep,
    Resend,
    GiveUp,
}

fn step<T>(t: &mut Transfer<T>, now: SimTime, online: bool) -> Step {
    if t.phase.due().is_none_or(|at| at > now) {
        return Step::Keep;
    }
    match t.phase {
        Phase::GiveUpAt(_) => Step::GiveUp,
        _ if !online => {
            t.phase = Phase::RetryAt(now.plus(OFFLINE_POLL_NS));
            Step::Keep
        }
        _ => {
            t.attempt += 1;
            t.phase = Phase::InFlight;
            Step::Resend
        }
    }
}

fn upload_frame(device: DeviceId, up: &Upload, attempt: u8) -> Frame {
    Frame::Media(MediaFrame::Upload {
        blob: up.blob,
        device,
        attempt,
        len: up.len,
        fetches: up.fetches,
    })
}

fn fetch_frame(device: DeviceId, down: &Download, attempt: u8) -> Frame {
    Frame::Media(MediaFrame::Fetch {
        blob: down.blob,
        host: down.host,
        device,
        attempt,
    })
}

#[cfg(test)]
mod tests {
    use super::super::store::MediaStore;
    use super::*;
    use crate::directory::PartnerLink;
    use crate::nodes::{Addr, Output};

    /// A client on device 0 (gatekeeper user 0) and its provider's store, frames moved by
    /// hand: the two-node harness of STYLE.md, with a switch to lose what goes to the store.
    struct Pair {
        dir: Directory,
        client: MediaClient,
        store: MediaStore,
        stats: MediaCounters,
        now: SimTime,
        store_down: bool,
    }

    impl Pair {
        fn new() -> Self {
            Pair {
                dir: Directory::new(&[2], vec![PartnerLink::Proxied], &[1, 1], vec![true; 2]),
                client: MediaClient::new(DeviceId(0)),
                store: MediaStore::new(ProviderId(0)),
                stats: MediaCounters::default(),
                now: SimTime::ZERO,
                store_down: false,
            }
        }

        /// Delivers what the client sent (or reports it lost), and the store's answers back.
        /// Returns what finished, and the client's timer if it armed one.
        fn pump(&mut self, mut fx: Effects) -> (Vec<Done>, Option<SimTime>) {
            let mut done = Vec::new();
            let mut timer = None;
            for out in std::mem::take(&mut fx.outputs) {
                match out {
                    Output::Send {
                        frame: Frame::Media(m),
                        ..
                    }
                    | Output::SendAfter {
                        frame: Frame::Media(m),
                        ..
                    } => {
                        if self.store_down {
                            let mut fx = Effects::default();
                            let d = super::super::DETECT_NS;
                            self.client
                                .failed(self.now, m.blob(), m.attempt(), d, &mut fx);
                            timer = timer.or(self.pump(fx).1);
                            continue;
                        }
                        let mut answers = Effects::default();
                        self.store
                            .handle_frame(Addr::Device(DeviceId(0)), m, &mut answers);
                        for a in answers.outputs {
                            let Output::Send {
                                frame: Frame::Media(a),
                                ..
                            } = a
                            else {
                                continue;
                            };
                            let mut fx = Effects::default();
                            done.extend(self.client.handle_frame(self.now, a, &mut fx));
                            let (more, t) = self.pump(fx);
                            done.extend(more);
                            timer = timer.or(t);
                        }
                    }
                    Output::Timer { at, .. } => timer = Some(at),
                    _ => {}
                }
            }
            (done, timer)
        }

        fn fire(&mut self, at: SimTime, online: bool) -> (Vec<Done>, Option<SimTime>) {
            self.now = at;
            let mut fx = Effects::default();
            let (dir, stats) = (&self.dir, &mut self.stats);
            self.client.handle_timer(at, online, dir, stats, &mut fx);
            self.pump(fx)
        }
    }

    fn upload(blob: u64) -> Upload {
        Upload {
            blob: BlobId(blob),
            msg: MsgId(blob),
            to_user: UserId(1),
            content: ContentKind::Image,
            body: vec![1, 2, 3],
            len: 4_000,
            fetches: 1,
            group: None,
        }
    }

    #[test]
    fn an_upload_finishes_on_the_stores_ack_and_a_download_on_its_data() {
        let mut p = Pair::new();
        let mut fx = Effects::default();
        p.client.upload(upload(1), 5_000, &p.dir, &mut fx);
        assert!(matches!(
            fx.outputs[0],
            Output::SendAfter {
                delay_ns: 5_000,
                ..
            }
        ));
        let (done, timer) = p.pump(fx);
        assert!(matches!(&done[..], [Done::Uploaded(u)] if u.msg == MsgId(1)));
        assert_eq!(timer, None);
        let down = Download {
            blob: BlobId(1),
            msg: MsgId(1),
            host: ProviderId(0),
            len: 4_000,
            content: ContentKind::Image,
            shown_at: SimTime::ZERO,
            secret: None,
            group: false,
        };
        let mut fx = Effects::default();
        p.client.download(down.clone(), &p.dir, &mut fx);
        p.client.download(down, &p.dir, &mut fx);
        assert_eq!(fx.outputs.len(), 1, "one download per blob");
        let (done, _) = p.pump(fx);
        assert!(matches!(&done[..], [Done::Downloaded(d)] if d.blob == BlobId(1)));
        assert!(p.client.is_idle());
    }

    #[test]
    fn a_store_down_is_retried_with_backoff_then_given_up_at_the_bound() {
        let mut p = Pair::new();
        p.store_down = true;
        let mut fx = Effects::default();
        p.client.upload(upload(2), 0, &p.dir, &mut fx);
        let (_, mut timer) = p.pump(fx);
        let mut fired = Vec::new();
        while let Some(at) = timer {
            fired.push(at);
            let (done, next) = p.fire(at, true);
            assert!(done.is_empty());
            timer = next;
        }
        assert_eq!(
            fired.len(),
            ATTEMPTS_MAX as usize,
            "7 retries, then the give-up"
        );
        assert_eq!(p.stats.media_upload_retries, ATTEMPTS_MAX as u64 - 1);
        assert_eq!(p.stats.media_upload_failures, 1);
        assert!(p.client.is_idle());
        let gaps: Vec<u64> = fired.windows(2).map(|w| w[1].since(w[0])).collect();
        let detect = super::super::DETECT_NS;
        assert_eq!(gaps[0], detect + 2 * BACKOFF_INITIAL_NS, "backoff doubles");
        assert_eq!(gaps[5], detect + BACKOFF_MAX_NS, "up to its bound");
        assert_eq!(
            *gaps.last().unwrap(),
            detect,
            "the last failure is only noticed"
        );
    }

    #[test]
    fn offline_puts_retries_off_and_a_late_success_still_counts() {
        let mut p = Pair::new();
        p.store_down = true;
        let mut fx = Effects::default();
        p.client.upload(upload(3), 0, &p.dir, &mut fx);
        let (_, timer) = p.pump(fx);
        let at = timer.expect("a retry is due");
        let (_, later) = p.fire(at, false);
        assert_eq!(
            later,
            Some(at.plus(OFFLINE_POLL_NS)),
            "polled while offline"
        );
        assert_eq!(p.stats.media_upload_retries, 0, "no attempt spent offline");
        p.store_down = false;
        let (done, _) = p.fire(at.plus(OFFLINE_POLL_NS), true);
        assert_eq!(done.len(), 1, "the store is back: stored on the retry");
        assert_eq!(p.stats.media_upload_retries, 1);
        // A stale error for an old attempt changes nothing.
        let mut fx = Effects::default();
        p.client.failed(p.now, BlobId(3), 0, 0, &mut fx);
        assert!(fx.outputs.is_empty());
    }
}
