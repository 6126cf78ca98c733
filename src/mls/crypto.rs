//! MLS's cryptography for the simulator: mls-rs's RustCrypto primitives, with every random
//! draw taken from the run's RNG tree instead of the operating system.
//!
//! mls-rs asks its [`CipherSuiteProvider`] for randomness in three places, and the RustCrypto
//! provider answers all three from the operating system: `random_bytes` (path secrets, init secrets,
//! reuse guards), key generation for HPKE (leaf encryption keys, and the ephemeral key of every
//! HPKE seal: Welcome secrets, path secrets to each copath node), and signature key generation.
//! [`SimSuite`] wraps the RustCrypto suite and answers them from a [`SimRng`]: `random_bytes`
//! directly; HPKE through a KEM whose Diffie-Hellman draws its secrets from the same stream
//! ([`SimDh`], so a seal's ephemeral is the run's too); Ed25519 keys from 32 drawn seed bytes.
//! Everything else (hashes, HKDF, AEAD, signatures, DH itself) is the RustCrypto code as
//! shipped. A test runs a whole group's life twice with one seed and compares every byte.

use crate::engine::SimRng;
use mls_rs_core::crypto::{
    CipherSuite, CipherSuiteProvider, CryptoProvider, HpkeCiphertext, HpkePsk, HpkePublicKey,
    HpkeSecretKey, SignaturePublicKey, SignatureSecretKey,
};
use mls_rs_crypto_hpke::context::{ContextR, ContextS};
use mls_rs_crypto_hpke::dhkem::DhKem;
use mls_rs_crypto_rustcrypto::aead::Aead;
use mls_rs_crypto_rustcrypto::ecdh::Ecdh;
use mls_rs_crypto_rustcrypto::kdf::Kdf;
use mls_rs_crypto_rustcrypto::{RustCryptoCipherSuite, RustCryptoError};
use mls_rs_crypto_traits::{DhType, KemId, SamplingMethod};
use rand::Rng;
use std::sync::{Arc, Mutex, PoisonError};
use zeroize::Zeroizing;

/// The one cipher suite the simulator speaks: MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
/// mandatory to implement in RFC 9420 and spoken by every implementation.
pub const SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

/// A device's source of MLS randomness: one stream of the run's RNG tree, shared by the
/// clones mls-rs makes of its provider (it takes `&self` and must be `Sync`; the simulator
/// drives a device from one thread, so the lock is never contended).
#[derive(Clone)]
pub struct Entropy(Arc<Mutex<SimRng>>);

impl Entropy {
    pub fn new(rng: SimRng) -> Self {
        Entropy(Arc::new(Mutex::new(rng)))
    }

    fn fill(&self, out: &mut [u8]) {
        // A panic while the lock was held leaves the stream where it was: still a stream.
        let mut rng = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        rng.fill_bytes(out);
    }
}

/// The crypto provider of one simulated MLS client.
#[derive(Clone)]
pub struct SimMlsCrypto {
    entropy: Entropy,
}

impl SimMlsCrypto {
    pub fn new(entropy: Entropy) -> Self {
        SimMlsCrypto { entropy }
    }
}

impl CryptoProvider for SimMlsCrypto {
    type CipherSuiteProvider = SimSuite;

    fn supported_cipher_suites(&self) -> Vec<CipherSuite> {
        vec![SUITE]
    }

    fn cipher_suite_provider(&self, cipher_suite: CipherSuite) -> Option<SimSuite> {
        if cipher_suite != SUITE {
            return None;
        }
        let kem_id = KemId::new(cipher_suite)?;
        let dh = SimDh {
            inner: Ecdh::new(cipher_suite)?,
            entropy: self.entropy.clone(),
        };
        let kem = DhKem::new(
            dh,
            Kdf::new(cipher_suite)?,
            kem_id as u16,
            kem_id.n_secret(),
        );
        let inner = RustCryptoCipherSuite::new(
            cipher_suite,
            kem,
            Kdf::new(cipher_suite)?,
            Aead::new(cipher_suite)?,
        )?;
        Some(SimSuite {
            inner,
            entropy: self.entropy.clone(),
        })
    }
}

/// X25519 whose new secrets come from the run's stream (HPKE's key generation and every seal's
/// ephemeral go through `generate`); the exchange itself is RustCrypto's.
#[derive(Clone)]
pub struct SimDh {
    inner: Ecdh,
    entropy: Entropy,
}

impl DhType for SimDh {
    type Error = <Ecdh as DhType>::Error;

    fn dh(
        &self,
        secret_key: &HpkeSecretKey,
        public_key: &HpkePublicKey,
    ) -> Result<Vec<u8>, Self::Error> {
        self.inner.dh(secret_key, public_key)
    }

    fn generate(&self) -> Result<(HpkeSecretKey, HpkePublicKey), Self::Error> {
        let mut secret = Zeroizing::new(vec![0u8; self.inner.secret_key_size()]);
        self.entropy.fill(&mut secret);
        let secret = HpkeSecretKey::from(secret.to_vec());
        let public = self.inner.to_public(&secret)?;
        Ok((secret, public))
    }

    fn to_public(&self, secret_key: &HpkeSecretKey) -> Result<HpkePublicKey, Self::Error> {
        self.inner.to_public(secret_key)
    }

    fn bitmask_for_rejection_sampling(&self) -> SamplingMethod {
        self.inner.bitmask_for_rejection_sampling()
    }

    fn secret_key_size(&self) -> usize {
        self.inner.secret_key_size()
    }

    fn public_key_size(&self) -> usize {
        self.inner.public_key_size()
    }

    fn public_key_validate(&self, key: &HpkePublicKey) -> Result<(), Self::Error> {
        self.inner.public_key_validate(key)
    }
}

type Inner = RustCryptoCipherSuite<DhKem<SimDh, Kdf>, Kdf, Aead>;

/// RustCrypto's suite, its randomness the run's.
#[derive(Clone)]
pub struct SimSuite {
    inner: Inner,
    entropy: Entropy,
}

impl CipherSuiteProvider for SimSuite {
    type Error = RustCryptoError;
    type HpkeContextS = ContextS<Kdf, Aead>;
    type HpkeContextR = ContextR<Kdf, Aead>;

    fn cipher_suite(&self) -> CipherSuite {
        self.inner.cipher_suite()
    }

    fn hash(&self, data: &[u8]) -> Result<Vec<u8>, Self::Error> {
        self.inner.hash(data)
    }

    fn mac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, Self::Error> {
        self.inner.mac(key, data)
    }

    fn aead_seal(
        &self,
        key: &[u8],
        data: &[u8],
        aad: Option<&[u8]>,
        nonce: &[u8],
    ) -> Result<Vec<u8>, Self::Error> {
        self.inner.aead_seal(key, data, aad, nonce)
    }

    fn aead_open(
        &self,
        key: &[u8],
        ciphertext: &[u8],
        aad: Option<&[u8]>,
        nonce: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner.aead_open(key, ciphertext, aad, nonce)
    }

    fn aead_key_size(&self) -> usize {
        self.inner.aead_key_size()
    }

    fn aead_nonce_size(&self) -> usize {
        self.inner.aead_nonce_size()
    }

    fn kdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner.kdf_extract(salt, ikm)
    }

    fn kdf_expand(
        &self,
        prk: &[u8],
        info: &[u8],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner.kdf_expand(prk, info, len)
    }

    fn kdf_extract_size(&self) -> usize {
        self.inner.kdf_extract_size()
    }

    fn hpke_seal(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
    ) -> Result<HpkeCiphertext, Self::Error> {
        self.inner.hpke_seal(remote_key, info, aad, pt)
    }

    fn hpke_seal_psk(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
        psk: HpkePsk<'_>,
    ) -> Result<HpkeCiphertext, Self::Error> {
        self.inner.hpke_seal_psk(remote_key, info, aad, pt, psk)
    }

    fn hpke_open(
        &self,
        ciphertext: &HpkeCiphertext,
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner
            .hpke_open(ciphertext, local_secret, local_public, info, aad)
    }

    fn hpke_open_psk(
        &self,
        ciphertext: &HpkeCiphertext,
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        psk: HpkePsk<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner
            .hpke_open_psk(ciphertext, local_secret, local_public, info, aad, psk)
    }

    fn hpke_setup_s(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
    ) -> Result<(Vec<u8>, Self::HpkeContextS), Self::Error> {
        self.inner.hpke_setup_s(remote_key, info)
    }

    fn hpke_setup_r(
        &self,
        kem_output: &[u8],
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
    ) -> Result<Self::HpkeContextR, Self::Error> {
        self.inner
            .hpke_setup_r(kem_output, local_secret, local_public, info)
    }

    fn kem_derive(&self, ikm: &[u8]) -> Result<(HpkeSecretKey, HpkePublicKey), Self::Error> {
        self.inner.kem_derive(ikm)
    }

    fn kem_generate(&self) -> Result<(HpkeSecretKey, HpkePublicKey), Self::Error> {
        // The inner suite's KEM is `SimDh`'s: this draws from the run's stream.
        self.inner.kem_generate()
    }

    fn kem_public_key_validate(&self, key: &HpkePublicKey) -> Result<(), Self::Error> {
        self.inner.kem_public_key_validate(key)
    }

    fn random_bytes(&self, out: &mut [u8]) -> Result<(), Self::Error> {
        self.entropy.fill(out);
        Ok(())
    }

    fn signature_key_generate(
        &self,
    ) -> Result<(SignatureSecretKey, SignaturePublicKey), Self::Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        self.entropy.fill(seed.as_mut());
        // The RustCrypto suite keeps an Ed25519 secret as its 64 keypair bytes.
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let secret = SignatureSecretKey::new(key.to_keypair_bytes().to_vec());
        let public = self.inner.signature_key_derive_public(&secret)?;
        Ok((secret, public))
    }

    fn signature_key_derive_public(
        &self,
        secret_key: &SignatureSecretKey,
    ) -> Result<SignaturePublicKey, Self::Error> {
        self.inner.signature_key_derive_public(secret_key)
    }

    fn sign(&self, secret_key: &SignatureSecretKey, data: &[u8]) -> Result<Vec<u8>, Self::Error> {
        self.inner.sign(secret_key, data)
    }

    fn verify(
        &self,
        public_key: &SignaturePublicKey,
        signature: &[u8],
        data: &[u8],
    ) -> Result<(), Self::Error> {
        self.inner.verify(public_key, signature, data)
    }
}
