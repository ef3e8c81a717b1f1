//! The keyring and every use of a key. No other module touches key bytes.
//!
//! A 256-bit master key only wraps data keys. The platform data key (account data) is stored
//! wrapped in `data_keys`; from it HKDF derives separate keys for field encryption, the email blind
//! index and bearer-token hashing. Field ciphertexts are XChaCha20-Poly1305 with associated data that
//! binds them to their table, column and row, so a ciphertext copied elsewhere does not open.

pub mod password;
pub mod stream;

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

const FIELD_FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext did not authenticate")]
    Open,
    #[error("master key: {0}")]
    MasterKey(String),
}

/// 32 key bytes that are wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyBytes([u8; 32]);

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBytes(<redacted>)")
    }
}

impl KeyBytes {
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    fn from_slice(b: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = b.try_into().ok()?;
        Some(Self(arr))
    }

    fn derive(&self, label: &str) -> KeyBytes {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"strongroom-v1"), &self.0);
        let mut out = [0u8; 32];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        hk.expand(label.as_bytes(), &mut out).unwrap_or_default();
        KeyBytes(out)
    }
}

/// Where a field ciphertext belongs; it is authenticated as associated data.
pub struct FieldAd<'a> {
    pub scope: &'a str,
    pub table: &'a str,
    pub column: &'a str,
    pub row: &'a str,
}

impl FieldAd<'_> {
    fn bytes(&self) -> Vec<u8> {
        format!(
            "strongroom:field:v1|{}|{}|{}|{}",
            self.scope, self.table, self.column, self.row
        )
        .into_bytes()
    }
}

/// Keys derived from one data key.
struct DataKey {
    version: u32,
    field: KeyBytes,
    blind_index: KeyBytes,
    token: KeyBytes,
}

impl DataKey {
    fn new(version: u32, root: &KeyBytes) -> Self {
        Self {
            version,
            field: root.derive("field-encryption"),
            blind_index: root.derive("blind-index"),
            token: root.derive("token-hash"),
        }
    }
}

/// The master key and the unwrapped platform data key.
pub struct Keyring {
    master: KeyBytes,
    platform: DataKey,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

/// Whether the master key was generated just now (the caller warns loudly).
pub enum MasterKeySource {
    Configured,
    Generated,
    LoadedGenerated,
}

/// Reads the master key from the configured value or file, or generates one (mode 0600) in the
/// data dir for zero-config use.
pub fn load_master_key(
    inline: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> Result<(KeyBytes, MasterKeySource), CryptoError> {
    let decode = |s: &str| {
        STANDARD
            .decode(s.trim())
            .ok()
            .and_then(|b| KeyBytes::from_slice(&b))
            .ok_or_else(|| CryptoError::MasterKey("must be 32 bytes, base64-encoded".into()))
    };
    if let Some(s) = inline {
        return Ok((decode(s)?, MasterKeySource::Configured));
    }
    if let Some(path) = file {
        let s = std::fs::read_to_string(path)
            .map_err(|e| CryptoError::MasterKey(format!("cannot read {}: {e}", path.display())))?;
        return Ok((decode(&s)?, MasterKeySource::Configured));
    }
    let path = data_dir.join("master.key");
    if path.exists() {
        let s = std::fs::read_to_string(&path)
            .map_err(|e| CryptoError::MasterKey(format!("cannot read {}: {e}", path.display())))?;
        return Ok((decode(&s)?, MasterKeySource::LoadedGenerated));
    }
    let key = KeyBytes::random();
    write_private(&path, STANDARD.encode(key.0).as_bytes())
        .map_err(|e| CryptoError::MasterKey(format!("cannot write {}: {e}", path.display())))?;
    Ok((key, MasterKeySource::Generated))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The root of every backup's key: derived from the master key for backups alone, so a backup
/// file is never sealed under the master key itself (and nothing else is sealed under this).
#[derive(Clone)]
pub struct BackupRoot(KeyBytes);

impl fmt::Debug for BackupRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupRoot(<redacted>)")
    }
}

impl BackupRoot {
    pub fn from_master(master: &KeyBytes) -> Self {
        BackupRoot(master.derive("backup-v1"))
    }

    /// The key of the one backup named `backup_id`.
    pub fn key(&self, backup_id: &str) -> stream::ContentKey {
        stream::ContentKey::from_root(self.0.derive(&format!("backup:{backup_id}")))
    }
}

/// A freshly generated data key wrapped for storage.
pub struct WrappedKey {
    pub version: u32,
    pub wrapped: Vec<u8>,
}

impl Keyring {
    /// Unwraps a stored platform key, or (when `stored` is None) creates one; returns the keyring
    /// and the wrapped key to store when one was created.
    pub fn open(
        master: KeyBytes,
        stored: Option<WrappedKey>,
    ) -> Result<(Self, Option<WrappedKey>), CryptoError> {
        let (root, version, created) = match stored {
            Some(w) => (
                unwrap_key(&master, "platform", w.version, &w.wrapped)?,
                w.version,
                None,
            ),
            None => {
                let root = KeyBytes::random();
                let wrapped = wrap_key(&master, "platform", 1, &root);
                (
                    root,
                    1,
                    Some(WrappedKey {
                        version: 1,
                        wrapped,
                    }),
                )
            }
        };
        Ok((
            Self {
                master,
                platform: DataKey::new(version, &root),
            },
            created,
        ))
    }

    /// The root of the backups' keys (see `BackupRoot`).
    pub fn backup_root(&self) -> BackupRoot {
        BackupRoot::from_master(&self.master)
    }

    /// Encrypts an account-data field bound to its place.
    pub fn seal_field(&self, ad: &FieldAd<'_>, plaintext: &[u8]) -> Vec<u8> {
        seal(
            &self.platform.field,
            self.platform.version,
            &ad.bytes(),
            plaintext,
        )
    }

    pub fn open_field(&self, ad: &FieldAd<'_>, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open(
            &self.platform.field,
            self.platform.version,
            &ad.bytes(),
            ciphertext,
        )
    }

    /// Convenience for UTF-8 fields.
    pub fn open_field_string(
        &self,
        ad: &FieldAd<'_>,
        ciphertext: &[u8],
    ) -> Result<String, CryptoError> {
        String::from_utf8(self.open_field(ad, ciphertext)?).map_err(|_| CryptoError::Open)
    }

    /// HMAC-SHA256 of a normalized email under the blind-index key: equality lookups without
    /// storing the address.
    pub fn blind_index(&self, normalized: &str) -> String {
        hmac_hex(&self.platform.blind_index, normalized.as_bytes())
    }

    /// The keyed hash under which a bearer secret is stored and looked up.
    pub fn hash_token(&self, token: &str) -> String {
        hmac_hex(&self.platform.token, token.as_bytes())
    }

    /// A keyed MAC over arbitrary bytes with a purpose label (e.g. for audit checkpoints).
    pub fn mac(&self, label: &str, data: &[u8]) -> String {
        let k = self.master.derive(label);
        hmac_hex(&k, data)
    }

    /// Whether `mac` is `self.mac(label, data)`, compared in constant time.
    pub fn verify_mac(&self, label: &str, data: &[u8], mac: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.mac(label, data)
            .as_bytes()
            .ct_eq(mac.as_bytes())
            .into()
    }
}

/// A tenant's data key, unwrapped: seals and opens that tenant's fields. Deleting the wrapped key
/// from the database makes every ciphertext under it unreadable (crypto-shredding).
pub struct TenantKey {
    scope: String,
    key: DataKey,
}

impl fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantKey({}, <redacted>)", self.scope)
    }
}

impl TenantKey {
    /// Encrypts a field of this tenant, bound to table, column and row (the scope is the tenant).
    pub fn seal(&self, table: &str, column: &str, row: &str, plaintext: &[u8]) -> Vec<u8> {
        let ad = FieldAd {
            scope: &self.scope,
            table,
            column,
            row,
        };
        seal(&self.key.field, self.key.version, &ad.bytes(), plaintext)
    }

    pub fn open(
        &self,
        table: &str,
        column: &str,
        row: &str,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let ad = FieldAd {
            scope: &self.scope,
            table,
            column,
            row,
        };
        open(&self.key.field, self.key.version, &ad.bytes(), ciphertext)
    }

    pub fn open_string(
        &self,
        table: &str,
        column: &str,
        row: &str,
        ciphertext: &[u8],
    ) -> Result<String, CryptoError> {
        String::from_utf8(self.open(table, column, row, ciphertext)?).map_err(|_| CryptoError::Open)
    }

    /// The keyed hash a search term is stored and looked up by (this tenant's blind-index key):
    /// equal terms match, the term itself is not stored. 64 bits, hex: a chance collision makes a
    /// search find a text it should not (within the org and the caller's workspaces) about once in
    /// 2^64 comparisons, and short hashes keep the index small.
    pub fn search_term(&self, term: &str) -> String {
        let mut h = hmac_hex(&self.key.blind_index, format!("search|{term}").as_bytes());
        h.truncate(16);
        h
    }
}

impl Keyring {
    /// A fresh data key for tenant `id`: the key to use now, and its wrapped form to store.
    pub fn new_tenant_key(&self, id: &str) -> (TenantKey, WrappedKey) {
        let root = KeyBytes::random();
        let wrapped = wrap_key(&self.master, id, 1, &root);
        (
            TenantKey {
                scope: id.to_string(),
                key: DataKey::new(1, &root),
            },
            WrappedKey {
                version: 1,
                wrapped,
            },
        )
    }

    /// Unwraps tenant `id`'s stored key.
    pub fn open_tenant_key(&self, id: &str, stored: &WrappedKey) -> Result<TenantKey, CryptoError> {
        let root = unwrap_key(&self.master, id, stored.version, &stored.wrapped)?;
        Ok(TenantKey {
            scope: id.to_string(),
            key: DataKey::new(stored.version, &root),
        })
    }
}

/// The WebAuthn relying party for the configured public URL (built once, at start-up); None when
/// the URL cannot be one (an IP address, for instance), in which case passkeys are unavailable.
pub fn relying_party(public_url: &str) -> Option<webauthn_rs::Webauthn> {
    let origin = url::Url::parse(public_url).ok()?;
    let host = origin.host_str()?.to_string();
    webauthn_rs::WebauthnBuilder::new(&host, &origin)
        .ok()?
        .rp_name("Strongroom")
        .build()
        .ok()
}

/// 256 bits from the OS RNG, base64url without padding.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A one-time code of `digits` decimal digits from the OS RNG (uniform: no modulo bias).
pub fn numeric_code(digits: u32) -> String {
    use rand::Rng;
    let n = rand::rngs::OsRng.gen_range(0..10u64.pow(digits));
    format!("{n:0width$}", width = digits as usize)
}

fn hmac_hex(key: &KeyBytes, data: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&key.0).unwrap_or_else(|_| unreachable_hmac());
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

fn unreachable_hmac() -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this path cannot be reached with a 32-byte key.
    panic!("HMAC rejected a 32-byte key")
}

fn wrap_key(master: &KeyBytes, id: &str, version: u32, key: &KeyBytes) -> Vec<u8> {
    let ad = format!("strongroom:wrap:v1|{id}|{version}");
    seal(master, version, ad.as_bytes(), &key.0)
}

fn unwrap_key(
    master: &KeyBytes,
    id: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<KeyBytes, CryptoError> {
    let ad = format!("strongroom:wrap:v1|{id}|{version}");
    let mut raw = open(master, version, ad.as_bytes(), wrapped)?;
    let k = KeyBytes::from_slice(&raw).ok_or(CryptoError::Open);
    raw.zeroize();
    k
}

/// Layout: format byte ‖ key version (u32 BE) ‖ 24-byte nonce ‖ ciphertext+tag. The header is
/// authenticated too.
fn seal(key: &KeyBytes, version: u32, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(1 + 4 + NONCE_LEN + plaintext.len() + 16);
    out.push(FIELD_FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&nonce);
    let mut aad = out[..5].to_vec();
    aad.extend_from_slice(ad);
    // Encryption with a valid key and nonce only fails for plaintexts over 256 GiB.
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap_or_default();
    out.extend_from_slice(&ct);
    out
}

fn open(key: &KeyBytes, version: u32, ad: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if data.len() < 1 + 4 + NONCE_LEN + 16 || data[0] != FIELD_FORMAT_V1 {
        return Err(CryptoError::Open);
    }
    let stored_version = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
    if stored_version != version {
        return Err(CryptoError::Open);
    }
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let mut aad = data[..5].to_vec();
    aad.extend_from_slice(ad);
    cipher
        .decrypt(
            XNonce::from_slice(&data[5..5 + NONCE_LEN]),
            Payload {
                msg: &data[5 + NONCE_LEN..],
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Open)
}

/// A keyring with a random master key, for the crypto modules' unit tests.
#[cfg(test)]
pub(crate) fn tests_keyring() -> Keyring {
    Keyring::open(KeyBytes::random(), None)
        .map(|(k, _)| k)
        .expect("keyring")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::open(KeyBytes::random(), None)
            .map(|(k, _)| k)
            .expect("keyring")
    }

    #[test]
    fn field_round_trips_and_is_bound_to_its_row() {
        let k = ring();
        let ad = FieldAd {
            scope: "platform",
            table: "users",
            column: "email",
            row: "a",
        };
        let ct = k.seal_field(&ad, b"alice@example.com");
        assert_eq!(k.open_field(&ad, &ct).expect("open"), b"alice@example.com");
        let other = FieldAd { row: "b", ..ad };
        assert!(k.open_field(&other, &ct).is_err());
        let other_col = FieldAd {
            scope: "platform",
            table: "users",
            column: "display_name",
            row: "a",
        };
        assert!(k.open_field(&other_col, &ct).is_err());
        let mut tampered = ct.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k
            .open_field(
                &FieldAd {
                    scope: "platform",
                    table: "users",
                    column: "email",
                    row: "a"
                },
                &tampered
            )
            .is_err());
    }

    #[test]
    fn stored_key_unwraps_only_under_its_master() {
        let master = KeyBytes::random();
        let (k1, created) = Keyring::open(master.clone(), None).expect("create");
        let w = created.expect("wrapped");
        let (k2, none) = Keyring::open(
            master,
            Some(WrappedKey {
                version: w.version,
                wrapped: w.wrapped.clone(),
            }),
        )
        .expect("reopen");
        assert!(none.is_none());
        assert_eq!(k1.blind_index("a@b.c"), k2.blind_index("a@b.c"));
        assert_ne!(k1.blind_index("a@b.c"), k1.hash_token("a@b.c"));
        assert!(Keyring::open(KeyBytes::random(), Some(w)).is_err());
    }

    #[test]
    fn tenant_keys_bind_ciphertexts_to_their_tenant() {
        let k = ring();
        let (a, wrapped) = k.new_tenant_key("org-a");
        let ct = a.seal("workspaces", "name", "w1", b"Project Falcon");
        let reopened = k.open_tenant_key("org-a", &wrapped).expect("unwrap");
        assert_eq!(
            reopened
                .open("workspaces", "name", "w1", &ct)
                .expect("open"),
            b"Project Falcon"
        );
        assert!(reopened.open("workspaces", "name", "w2", &ct).is_err());
        let (b, _) = k.new_tenant_key("org-b");
        assert!(b.open("workspaces", "name", "w1", &ct).is_err());
        // A wrapped key moved to another tenant does not unwrap.
        assert!(k.open_tenant_key("org-b", &wrapped).is_err());
    }

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).expect("b64").len(), 32);
        assert_ne!(a, new_token());
    }
}
