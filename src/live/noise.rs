//! Noise_XX_25519_AESGCM_SHA256 (the `snow` crate) between partners (adapters, direct partner
//! clients) and the interop gateway. Live mode faces real sockets, so every handshake draws its
//! ephemeral key from the operating system's generator (a seeded ephemeral would be the same in
//! every handshake of a listener); the static keys are derived from the run's seed, so that the
//! `serve` and `load` processes of one run agree on them. The primitives are snow's defaults.

use super::LiveError;
use crate::engine::RngTree;
use snow::params::NoiseParams;
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
use snow::types::Random;
use snow::{Builder, StatelessTransportState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const NOISE_PATTERN: &str = "Noise_XX_25519_AESGCM_SHA256";
/// A Noise transport message is at most 65,535 bytes; the tag takes 16.
pub const NOISE_MSG_MAX: usize = 65_535;
pub const NOISE_TAG_LEN: usize = 16;
/// Bound on one handshake message. XX's are at most 96 bytes with the empty payloads sent
/// here; a longer one is garbage, and a connection in its handshake holds only this much.
pub const HANDSHAKE_MSG_MAX: usize = 1024;

/// The OS generator, for snow.
struct OsRandom;

impl Random for OsRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        getrandom::fill(dest).map_err(|_| snow::Error::Rng)
    }
}

/// Resolves only the RNG (the OS's); everything else falls back to snow's default primitives.
struct OsResolver;

impl CryptoResolver for OsResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(OsRandom))
    }
    fn resolve_dh(&self, _: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        None
    }
    fn resolve_hash(&self, _: &snow::params::HashChoice) -> Option<Box<dyn snow::types::Hash>> {
        None
    }
    fn resolve_cipher(
        &self,
        _: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        None
    }
}

/// One end's Noise static key.
#[derive(Clone, Copy)]
pub struct NoiseKeys {
    pub static_private: [u8; 32],
}

impl NoiseKeys {
    /// Keys of endpoint (`label`, `id`), from the run's seed.
    pub fn derive(tree: &RngTree, label: &str, id: u64) -> Self {
        NoiseKeys {
            static_private: tree.seed_for(&format!("noise-static/{label}"), id),
        }
    }
}

/// A snow builder for `keys`, its ephemerals from the OS (`calibrate` times handshakes with it).
pub(crate) fn builder(keys: &NoiseKeys) -> Result<Builder<'_>, LiveError> {
    let params: NoiseParams = NOISE_PATTERN
        .parse()
        .map_err(|e: snow::Error| LiveError::Noise(e.to_string()))?;
    let resolver = FallbackResolver::new(Box::new(OsResolver), Box::new(DefaultResolver));
    Builder::with_resolver(params, Box::new(resolver))
        .local_private_key(&keys.static_private)
        .map_err(|e| LiveError::Noise(e.to_string()))
}

async fn send_msg(stream: &mut TcpStream, msg: &[u8]) -> Result<(), LiveError> {
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    stream
        .write_all(&out)
        .await
        .map_err(LiveError::io("noise handshake write"))
}

async fn recv_msg(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, LiveError> {
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .await
        .map_err(LiveError::io("noise handshake read"))?;
    let n = u16::from_be_bytes(len) as usize;
    if n > HANDSHAKE_MSG_MAX {
        return Err(LiveError::Noise(format!(
            "a handshake message of {n} bytes (at most {HANDSHAKE_MSG_MAX})"
        )));
    }
    buf.resize(n, 0);
    stream
        .read_exact(&mut buf[..n])
        .await
        .map_err(LiveError::io("noise handshake read"))?;
    Ok(n)
}

/// Runs the XX handshake (`-> e; <- e, ee, s, es; -> s, se`) on `stream`.
pub async fn handshake(
    stream: &mut TcpStream,
    initiator: bool,
    keys: &NoiseKeys,
) -> Result<StatelessTransportState, LiveError> {
    let noise = |e: snow::Error| LiveError::Noise(e.to_string());
    if !initiator {
        // Nothing is held for a peer that connects and stays silent but the socket.
        stream
            .readable()
            .await
            .map_err(LiveError::io("noise handshake read"))?;
    }
    let b = builder(keys)?;
    let mut hs = if initiator {
        b.build_initiator().map_err(noise)?
    } else {
        b.build_responder().map_err(noise)?
    };
    let mut out = vec![0u8; HANDSHAKE_MSG_MAX];
    let mut inb = Vec::new();
    let mut payload = vec![0u8; HANDSHAKE_MSG_MAX];
    for step in 0..3 {
        let ours = (step % 2 == 0) == initiator;
        if ours {
            let n = hs.write_message(&[], &mut out).map_err(noise)?;
            send_msg(stream, &out[..n]).await?;
        } else {
            let n = recv_msg(stream, &mut inb).await?;
            hs.read_message(&inb[..n], &mut payload).map_err(noise)?;
        }
    }
    hs.into_stateless_transport_mode().map_err(noise)
}

/// Which end reads a stranger's handshake message, and which message of XX it is.
#[derive(Clone, Copy, Debug)]
pub enum HandshakeRead {
    /// The responder (the gateway) reads `-> e`.
    ResponderFirst,
    /// The initiator, having sent `-> e`, reads `<- e, ee, s, es`.
    InitiatorSecond,
    /// The responder, having read a first message and answered it, reads `-> s, se`.
    ResponderThird,
}

/// A first message: any 32 bytes are an X25519 ephemeral key, and the payload is empty.
const FIRST_MESSAGE: [u8; 32] = [9; 32];

/// Runs a fresh handshake with `keys` up to the message `read` names and feeds it `msg`, as
/// [`handshake`] would after reading it off a socket: what a stranger's bytes can do to either
/// end (the fuzz target's entry, `fuzzing::noise`).
pub fn read_handshake_message(
    keys: &NoiseKeys,
    read: HandshakeRead,
    msg: &[u8],
) -> Result<usize, LiveError> {
    let noise = |e: snow::Error| LiveError::Noise(e.to_string());
    let b = builder(keys)?;
    // Our own messages are at most 96 bytes (`<- e, ee, s, es` with empty payloads), and a
    // payload is never longer than the message that carries it.
    let mut out = [0u8; 128];
    let mut payload = vec![0u8; msg.len().max(FIRST_MESSAGE.len())];
    let mut hs = match read {
        HandshakeRead::ResponderFirst => b.build_responder().map_err(noise)?,
        HandshakeRead::InitiatorSecond => {
            let mut hs = b.build_initiator().map_err(noise)?;
            hs.write_message(&[], &mut out).map_err(noise)?;
            hs
        }
        HandshakeRead::ResponderThird => {
            let mut hs = b.build_responder().map_err(noise)?;
            hs.read_message(&FIRST_MESSAGE, &mut payload)
                .map_err(noise)?;
            hs.write_message(&[], &mut out).map_err(noise)?;
            hs
        }
    };
    hs.read_message(msg, &mut payload).map_err(noise)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The responder's ephemeral public key: the first 32 bytes of its message (`<- e, ...`).
    fn responder_ephemeral(gateway: &NoiseKeys, client: &NoiseKeys) -> Vec<u8> {
        let mut initiator = builder(client).unwrap().build_initiator().unwrap();
        let mut responder = builder(gateway).unwrap().build_responder().unwrap();
        let (mut msg, mut payload) = (vec![0u8; 1024], vec![0u8; 1024]);
        let n = initiator.write_message(&[], &mut msg).unwrap();
        responder.read_message(&msg[..n], &mut payload).unwrap();
        let n = responder.write_message(&[], &mut msg).unwrap();
        initiator.read_message(&msg[..n], &mut payload).unwrap();
        msg[..32].to_vec()
    }

    #[test]
    fn every_handshake_draws_a_fresh_responder_ephemeral() {
        let tree = RngTree::new(1);
        let gateway = NoiseKeys::derive(&tree, "gw", 0);
        let client = NoiseKeys::derive(&tree, "client", 0);
        let a = responder_ephemeral(&gateway, &client);
        let b = responder_ephemeral(&gateway, &client);
        assert_ne!(a, b, "same static keys, two handshakes: two ephemerals");
        assert_ne!(a, vec![0u8; 32]);
    }

    #[test]
    fn handshake_and_transport_round_trip_on_loopback() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tree = RngTree::new(1);
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = l.accept().await.unwrap();
                handshake(&mut s, false, &NoiseKeys::derive(&tree, "gw", 0))
                    .await
                    .unwrap()
            });
            let mut c = TcpStream::connect(addr).await.unwrap();
            let ct = handshake(&mut c, true, &NoiseKeys::derive(&tree, "client", 0))
                .await
                .unwrap();
            let st = server.await.unwrap();
            let mut sealed = vec![0u8; 64];
            let n = ct.write_message(0, b"hello", &mut sealed).unwrap();
            assert!(!sealed[..n].windows(5).any(|w| w == b"hello"));
            let mut open = vec![0u8; 64];
            let m = st.read_message(0, &sealed[..n], &mut open).unwrap();
            assert_eq!(&open[..m], b"hello");
        });
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        /// Any bytes as a handshake message to either end: an error or a step, never a panic.
        #[test]
        fn any_handshake_message_is_refused_or_read(bytes in crate::fuzzing::inputs("noise")) {
            crate::fuzzing::noise(&bytes);
        }
    }
}
