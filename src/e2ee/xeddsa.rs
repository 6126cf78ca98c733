//! XEdDSA over Curve25519 identity keys, as libsignal signs signed prekeys and sender-key
//! messages: the Montgomery private key is used directly as an Ed25519 scalar and the Edwards
//! sign bit travels in the top bit of the signature (libsignal's `calculate_signature`). The
//! `xeddsa` crate pulls in the old rand_core generation, and this is a few lines on
//! curve25519-dalek. The signer caches the Edwards form of its key, which halves signing cost; a
//! key that verifies many signatures (a sender key) caches its own and, in time, a table of it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::{EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

pub const SIGNATURE_LEN: usize = 64;

/// hash_1 prefix of the XEdDSA spec: 2^256 - 2 in little-endian (0xFE, then 31 bytes of 0xFF).
const HASH1_PREFIX: [u8; 32] = {
    let mut p = [0xFFu8; 32];
    p[0] = 0xFE;
    p
};

/// A Curve25519 private key prepared for signing: its scalar and its Edwards public key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SigningKey {
    key_bytes: [u8; 32],
    a: Scalar,
    ed_public: [u8; 32],
}

impl SigningKey {
    /// `clamped` is the (already clamped) X25519 private key.
    pub fn new(clamped: &[u8; 32]) -> Self {
        assert!(
            clamped[0] & 7 == 0 && clamped[31] & 0xC0 == 0x40,
            "an XEdDSA signing key is a clamped X25519 key"
        );
        let a = Scalar::from_bytes_mod_order(*clamped);
        let ed_public = (&a * ED25519_BASEPOINT_TABLE).compress().to_bytes();
        SigningKey {
            key_bytes: *clamped,
            a,
            ed_public,
        }
    }

    /// Signs the concatenation of `message` parts; `random` is 64 caller-drawn bytes.
    pub fn sign(&self, message: &[&[u8]], random: &[u8; 64]) -> [u8; SIGNATURE_LEN] {
        let mut h1 = Sha512::new();
        h1.update(HASH1_PREFIX);
        h1.update(self.key_bytes);
        message.iter().for_each(|m| h1.update(m));
        h1.update(random);
        let r = Scalar::from_hash(h1);
        let cap_r = (&r * ED25519_BASEPOINT_TABLE).compress().to_bytes();
        let h = challenge(&cap_r, &self.ed_public, message);
        let s = h * self.a + r;
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[..32].copy_from_slice(&cap_r);
        sig[32..].copy_from_slice(s.as_bytes());
        // s < 2^253: bits 253 and 254 are zero (verification refuses anything else), and bit
        // 255 is free for the sign of the Edwards key.
        assert!(sig[63] & 0xE0 == 0, "a signature's scalar is reduced");
        sig[63] = (sig[63] & 0x7F) | (self.ed_public[31] & 0x80);
        sig
    }
}

/// Verifies a signature by the Curve25519 public key `public_u` (32-byte Montgomery u).
pub fn verify(public_u: &[u8; 32], message: &[&[u8]], sig: &[u8; SIGNATURE_LEN]) -> bool {
    match MontgomeryPoint(*public_u).to_edwards(sig[63] >> 7) {
        Some(a) => verify_with(&-a, &a.compress().to_bytes(), None, message, sig),
        None => false,
    }
}

/// A public key that verifies many signatures (a sender-key signing key): its Edwards form for
/// each sign bit, computed once instead of once per message. Clones share one preparation, so
/// every member of a group that holds the same sender's key (in one process) shares its table.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    forms: Arc<[Option<Form>; 2]>,
}

/// Verifications by one key before it gets a table of its own. The table costs about 0.75 ms (a
/// point inversion for each of its 256 entries) and saves about 5 us per verification, so it
/// pays after about 140: building it once a key has verified about that many bounds the cost of
/// guessing at about twice the best choice made in hindsight (the ski-rental rule), and a key
/// verified fewer times never builds it. A 256-member group builds it during its first messages.
pub(crate) const TABLE_AFTER: u32 = 128;

/// Whether a key's table is worth building: not where dalek's double-base multiplication runs on
/// AVX-512 IFMA, which takes 12.2 us here against the two fixed-base ones' 17.8. Either way the
/// same point, so the same verdict.
fn tables_pay() -> bool {
    !super::curve_backend::dalek_runs_on_ifma()
}

/// A key's Edwards form for one sign bit: -A and compressed A, and once the key has verified
/// [`TABLE_AFTER`] signatures, multiples of -A that turn h*(-A) into a fixed-base
/// multiplication (64 additions and 4 doublings against about 250 doublings).
struct Form {
    neg_a: EdwardsPoint,
    cap_a: [u8; 32],
    uses: AtomicU32,
    table: OnceLock<Box<EdwardsBasepointTable>>,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Form")
            .field("cap_a", &self.cap_a)
            .field("table", &self.table.get().is_some())
            .finish()
    }
}

impl VerifyingKey {
    pub fn new(public_u: &[u8; 32]) -> Self {
        let form = |sign: u8| {
            MontgomeryPoint(*public_u).to_edwards(sign).map(|a| Form {
                neg_a: -a,
                cap_a: a.compress().to_bytes(),
                uses: AtomicU32::new(0),
                table: OnceLock::new(),
            })
        };
        let forms = [form(0), form(1)];
        // Whether u has an Edwards form (u != -1, on the curve) does not depend on the sign.
        assert!(
            forms[0].is_some() == forms[1].is_some(),
            "a key maps to Edwards for both signs or for neither"
        );
        VerifyingKey {
            forms: Arc::new(forms),
        }
    }

    pub fn verify(&self, message: &[&[u8]], sig: &[u8; SIGNATURE_LEN]) -> bool {
        self.verify_building(message, sig, tables_pay())
    }

    /// [`VerifyingKey::verify`], building the key's table after [`TABLE_AFTER`] verifications
    /// when `tables` (a table already built is used either way).
    fn verify_building(&self, message: &[&[u8]], sig: &[u8; SIGNATURE_LEN], tables: bool) -> bool {
        let Some(form) = &self.forms[usize::from(sig[63] >> 7)] else {
            return false;
        };
        let table = form.table.get().map(|t| &**t).or_else(|| {
            if !tables {
                return None;
            }
            // Relaxed: the count only decides when to build; OnceLock orders the table itself.
            let uses = form.uses.fetch_add(1, Ordering::Relaxed);
            (uses >= TABLE_AFTER).then(|| {
                &**form
                    .table
                    .get_or_init(|| Box::new(EdwardsBasepointTable::create(&form.neg_a)))
            })
        });
        verify_with(&form.neg_a, &form.cap_a, table, message, sig)
    }

    /// Whether another holder shares this preparation (a cache may drop it when not).
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.forms) > 1
    }
}

/// The verifying keys of the sender keys held in one process (a run's devices), by public key:
/// every member that installs the same sender's key gets the same preparation, so the table is
/// built once for a group's whole membership. Keys no holder uses any more are dropped as the
/// cache grows (it stays within twice the keys in use, and at least [`Self::PRUNE_FLOOR`]).
#[derive(Debug, Default)]
pub struct SharedVerifiers {
    keys: BTreeMap<[u8; 32], VerifyingKey>,
    prune_at: usize,
}

impl SharedVerifiers {
    const PRUNE_FLOOR: usize = 256;

    /// The verifying key of `public_u`, shared with every earlier holder of it.
    pub fn get(&mut self, public_u: &[u8; 32]) -> VerifyingKey {
        if let Some(key) = self.keys.get(public_u) {
            return key.clone();
        }
        if self.keys.len() >= self.prune_at.max(Self::PRUNE_FLOOR) {
            self.keys.retain(|_, key| key.is_shared());
            self.prune_at = 2 * self.keys.len();
        }
        let key = VerifyingKey::new(public_u);
        self.keys.insert(*public_u, key.clone());
        key
    }
}

/// The XEdDSA check R == s*B - h*A, with h = SHA-512(R || A || M), s's top three bits zero.
/// With a table of -A's multiples, s*B and h*(-A) are two fixed-base multiplications; without,
/// one double-base one. The point is the same either way (both take h and s as the same reduced
/// integers), so the verdict does not depend on which ran.
fn verify_with(
    neg_a: &EdwardsPoint,
    cap_a: &[u8; 32],
    table: Option<&EdwardsBasepointTable>,
    message: &[&[u8]],
    sig: &[u8; SIGNATURE_LEN],
) -> bool {
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    s_bytes[31] &= 0x7F;
    if s_bytes[31] & 0xE0 != 0 {
        return false;
    }
    assert!(s_bytes[31] < 0x20, "s is below 2^253 past the range check");
    let mut cap_r = [0u8; 32];
    cap_r.copy_from_slice(&sig[..32]);
    let h = challenge(&cap_r, cap_a, message);
    let s = Scalar::from_bytes_mod_order(s_bytes);
    let check = match table {
        Some(table) => (&s * ED25519_BASEPOINT_TABLE) + (&h * table),
        None => EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, neg_a, &s),
    };
    crate::e2ee::kdf::ct_eq(check.compress().as_bytes(), &cap_r)
}

fn challenge(cap_r: &[u8; 32], cap_a: &[u8; 32], message: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    h.update(cap_r);
    h.update(cap_a);
    message.iter().for_each(|m| h.update(m));
    Scalar::from_hash(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use rand::{Rng, SeedableRng};

    fn scalar(rng: &mut impl Rng) -> Scalar {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    /// The table's s*B + h*(-A) is the double-base multiplication's point, also for keys with a
    /// small-order component (a hostile sender's), so the two paths cannot disagree on a verdict.
    #[test]
    fn table_and_double_base_compute_the_same_point() {
        let mut rng = crate::engine::SimRng::seed_from_u64(7);
        for i in 0..24 {
            let a = &scalar(&mut rng) * ED25519_BASEPOINT_TABLE;
            let p = a + EIGHT_TORSION[i % 8];
            let table = EdwardsBasepointTable::create(&p);
            let (h, s) = (scalar(&mut rng), scalar(&mut rng));
            let fixed = (&s * ED25519_BASEPOINT_TABLE) + (&h * &table);
            let double = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &p, &s);
            assert_eq!(fixed.compress(), double.compress(), "point {i}");
        }
    }

    /// A key gets its table after TABLE_AFTER verifications, and gives the same verdicts after as
    /// before and as the one-off `verify`: genuine signatures, every flipped bit of one, the
    /// wrong message.
    #[test]
    fn verdicts_do_not_change_when_the_table_arrives() {
        let mut rng = crate::engine::SimRng::seed_from_u64(8);
        let private = crate::e2ee::PrivateKey::generate(&mut rng);
        let public = private.public_key();
        let signer = SigningKey::new(&private.to_bytes());
        let key = VerifyingKey::new(public.as_bytes());
        let sign = |rng: &mut crate::engine::SimRng, m: &[u8]| {
            let mut random = [0u8; 64];
            rng.fill_bytes(&mut random);
            signer.sign(&[m], &random)
        };
        let has_table =
            |key: &VerifyingKey| key.forms.iter().flatten().any(|f| f.table.get().is_some());
        let check = |key: &VerifyingKey, sig: &[u8; SIGNATURE_LEN]| {
            let genuine = key.verify(&[b"group message"], sig);
            assert_eq!(genuine, verify(public.as_bytes(), &[b"group message"], sig));
            assert!(!key.verify(&[b"another message"], sig));
            for bit in (0..SIGNATURE_LEN * 8).step_by(11) {
                let mut bad = *sig;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    !key.verify(&[b"group message"], &bad),
                    "bit {bit} flip accepted"
                );
            }
            genuine
        };
        // check() verifies 49 times, each with the key's own sign bit (bit 511 is not flipped):
        // below TABLE_AFTER.
        let sig = sign(&mut rng, b"group message");
        assert!(check(&key, &sig));
        assert!(
            !has_table(&key),
            "no table before TABLE_AFTER verifications"
        );
        let shared = key.clone();
        // Built whatever this CPU would choose (where it would not, the verifications above were
        // not counted): the table path is tested on every host.
        for _ in 0..=TABLE_AFTER {
            assert!(shared.verify_building(&[b"group message"], &sig, true));
        }
        assert!(has_table(&key), "a clone's verifications count for the key");
        for _ in 0..8 {
            let sig = sign(&mut rng, b"group message");
            assert!(check(&key, &sig));
        }
    }

    /// Holders of the same sender key share one preparation; a key nobody holds is dropped once
    /// the cache has grown past its floor.
    #[test]
    fn shared_verifiers_share_and_prune() {
        let mut rng = crate::engine::SimRng::seed_from_u64(9);
        let mut cache = SharedVerifiers::default();
        let public = *crate::e2ee::PrivateKey::generate(&mut rng)
            .public_key()
            .as_bytes();
        let first = cache.get(&public);
        let second = cache.get(&public);
        assert!(Arc::ptr_eq(&first.forms, &second.forms));
        drop(second);
        for _ in 0..SharedVerifiers::PRUNE_FLOOR {
            let other = *crate::e2ee::PrivateKey::generate(&mut rng)
                .public_key()
                .as_bytes();
            cache.get(&other);
        }
        assert!(
            cache.keys.len() <= 2,
            "unheld keys pruned: {}",
            cache.keys.len()
        );
        assert!(cache.keys.contains_key(&public), "a held key is kept");
    }
}
