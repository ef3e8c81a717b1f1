//! The keyring and every use of a key. No other module touches key bytes.
//!
//! A 256-bit master key only wraps data keys. The platform data key (account data) is stored
//! wrapped in `data_keys`; from it HKDF derives separate keys for field encryption, the email blind
//! index and bearer-token hashing. Field ciphertexts are XChaCha20-Poly1305 with associated data that
//! binds them to their table, column and row, so a ciphertext copied elsewhere does not open.

pub mod password;
pub mod stream;
pub mod vault;

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
/// A field of an account's own personal data, sealed under a key derived from the platform field
/// key and the account's shred secret (see `seal_field`).
const FIELD_FORMAT_ACCOUNT: u8 = 2;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext did not authenticate")]
    Open,
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("shred vault: {0}")]
    Vault(String),
    /// The key's shred secret is gone: the tenant was deleted, and this copy of its key (from a
    /// backup older than the deletion) never opens again.
    #[error("the key was destroyed")]
    Shredded,
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
    /// The account whose personal data the field is: sealed under that account's shred secret
    /// too, so erasing the account destroys it in old backups as well. None: the platform key
    /// alone.
    pub account: Option<&'a str>,
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

/// The master key (and, during a master key rotation, the previous one) and the unwrapped
/// platform data key.
pub struct Keyring {
    master: KeyBytes,
    /// The master key being rotated away from: wrapped keys that do not open under `master` are
    /// tried under it, until `strongroom keys rotate` has re-wrapped them all.
    previous: Option<KeyBytes>,
    platform: DataKey,
    /// The root of the MACs of long-lived signed values (audit checkpoints, device cookies,
    /// opt-out links): derived from the platform data key, not from the master key, so they
    /// outlive a master key rotation. (Platform only: an org key derives none, which keeps the
    /// per-request unwrap of an org key at three derivations.)
    mac: KeyBytes,
    /// The org keys' shred secrets (see `vault`): when set, every org key is wrapped under the
    /// master key and its org's secret together.
    vault: Option<std::sync::Arc<vault::Vault>>,
    /// The accounts' shred secrets: when set, an account's own fields (`FieldAd::account`) are
    /// sealed under a key derived from the platform field key and the account's secret.
    accounts: Option<std::sync::Arc<vault::Vault>>,
    /// Orgs' wrapping keys (from the current master key and each org's secret) and accounts'
    /// field keys, derived once per process rather than on every request.
    org_keks: Derived,
    account_keys: Derived,
}

/// Keys derived from shred secrets, by tenant id, so that HKDF runs once per id per process and
/// not once per request. Bounded: emptied when it reaches `Derived::MAX` ids. An id's entry is
/// dropped when its secret is destroyed through the keyring; a secret destroyed by another
/// process leaves this one's entry until restart, which opens nothing new: the rows it sealed are
/// gone (the deletion or erasure committed first) and old copies are not read by a live server.
#[derive(Default)]
struct Derived(std::sync::RwLock<std::collections::HashMap<String, KeyBytes>>);

impl Derived {
    const MAX: usize = 100_000;

    /// `id`'s key: cached, or made by `make` (and cached when it is made).
    fn get_or(
        &self,
        id: &str,
        make: impl FnOnce() -> Result<KeyBytes, CryptoError>,
    ) -> Result<KeyBytes, CryptoError> {
        if let Some(k) = self.0.read().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(k);
        }
        let k = make()?;
        if let Ok(mut m) = self.0.write() {
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(id.to_string(), k.clone());
        }
        Ok(k)
    }

    fn forget(&self, id: &str) {
        if let Ok(mut m) = self.0.write() {
            m.remove(id);
        }
    }
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

/// The previous master key of a rotation, when the configuration names one (never generated).
pub fn load_previous_master_key(
    inline: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<KeyBytes>, CryptoError> {
    let decode = |s: &str| {
        STANDARD
            .decode(s.trim())
            .ok()
            .and_then(|b| KeyBytes::from_slice(&b))
            .ok_or_else(|| {
                CryptoError::MasterKey(
                    "the previous master key must be 32 bytes, base64-encoded".into(),
                )
            })
    };
    if let Some(s) = inline {
        return decode(s).map(Some);
    }
    if let Some(path) = file {
        let s = std::fs::read_to_string(path)
            .map_err(|e| CryptoError::MasterKey(format!("cannot read {}: {e}", path.display())))?;
        return decode(&s).map(Some);
    }
    Ok(None)
}

/// Whether two keys are the same (a rotation to the key in use is refused).
pub fn same_key(a: &KeyBytes, b: &KeyBytes) -> bool {
    use subtle::ConstantTimeEq;
    a.0.ct_eq(&b.0).into()
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
#[derive(Clone)]
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
        Self::open_rotating(master, None, stored)
    }

    /// `open`, with the master key being rotated away from (`previous_master_key_file`): a key
    /// still wrapped under it opens too.
    pub fn open_rotating(
        master: KeyBytes,
        previous: Option<KeyBytes>,
        stored: Option<WrappedKey>,
    ) -> Result<(Self, Option<WrappedKey>), CryptoError> {
        let (root, version, created) = match stored {
            Some(w) => (
                unwrap_either(
                    &master,
                    previous.as_ref(),
                    "platform",
                    w.version,
                    &w.wrapped,
                )?,
                w.version,
                None,
            ),
            None => {
                let root = KeyBytes::random();
                let wrapped = seal_wrapped(&master, "platform", 1, &root.0);
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
                previous,
                platform: DataKey::new(version, &root),
                mac: root.derive("mac"),
                vault: None,
                accounts: None,
                org_keks: Derived::default(),
                account_keys: Derived::default(),
            },
            created,
        ))
    }

    /// Org keys wrapped with their shred secrets in `vault`.
    pub fn with_vault(mut self, vault: std::sync::Arc<vault::Vault>) -> Self {
        self.vault = Some(vault);
        self
    }

    pub fn vault(&self) -> Option<&std::sync::Arc<vault::Vault>> {
        self.vault.as_ref()
    }

    /// Accounts' own fields sealed with their shred secrets in `vault`.
    pub fn with_account_vault(mut self, vault: std::sync::Arc<vault::Vault>) -> Self {
        self.accounts = Some(vault);
        self
    }

    pub fn account_vault(&self) -> Option<&std::sync::Arc<vault::Vault>> {
        self.accounts.as_ref()
    }

    /// Makes account `id`'s shred secret (when accounts have a vault): done once, when the account
    /// is created or its fields are first re-sealed with one. Sealing never makes a secret, so an
    /// erased account (whose secret is gone) can never get a new one by accident.
    pub fn new_account_secret(&self, id: &str) -> Result<(), CryptoError> {
        match &self.accounts {
            Some(v) => v.ensure(id).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Destroys account `id`'s shred secret: its fields sealed under it, in this database and in
    /// every backup of it, never open again.
    pub fn destroy_account_secret(&self, id: &str) -> Result<(), CryptoError> {
        self.account_keys.forget(id);
        match &self.accounts {
            Some(v) => v.destroy(id),
            None => Ok(()),
        }
    }

    /// Destroys org `id`'s shred secret: its key, in this database and in every backup of it,
    /// never opens again.
    pub fn destroy_org_secret(&self, id: &str) -> Result<(), CryptoError> {
        self.org_keks.forget(id);
        match &self.vault {
            Some(v) => v.destroy(id),
            None => Ok(()),
        }
    }

    /// Whether account `id` was erased after the backup this database came from: accounts have a
    /// vault, and it holds no secret for the account. (Only meaningful for an account whose
    /// fields are sealed with a secret: every account not erased, once `keys::adopt_accounts` ran.)
    pub fn account_shredded(&self, id: &str) -> bool {
        self.accounts
            .as_deref()
            .is_some_and(|v| matches!(v.secret(id), Ok(None)))
    }

    /// Whether `ciphertext`, a field of account `id`'s own, is sealed under a shred secret that
    /// is gone: the account was erased after the backup this database came from.
    pub fn account_erased(&self, id: &str, ciphertext: &[u8]) -> bool {
        sealed_for_account(ciphertext) && self.account_shredded(id)
    }

    /// The key sealing account `account`'s own fields: None when accounts have no vault.
    fn account_field_key(&self, account: &str) -> Result<Option<KeyBytes>, CryptoError> {
        let Some(v) = &self.accounts else {
            return Ok(None);
        };
        self.account_keys
            .get_or(account, || {
                let secret = v.secret(account)?.ok_or(CryptoError::Shredded)?;
                let hk = hkdf::Hkdf::<Sha256>::new(Some(&secret[..]), &self.platform.field.0);
                let mut out = [0u8; 32];
                // 32 bytes is always a valid HKDF-SHA256 output length.
                hk.expand(b"strongroom:account-field:v1", &mut out)
                    .unwrap_or_default();
                Ok(KeyBytes(out))
            })
            .map(Some)
    }

    /// Tenant `id`'s key bytes wrapped for storage: under the master key and the tenant's shred
    /// secret (made now if it has none) when a vault is configured, under the master key alone
    /// otherwise (and for the platform's own key).
    fn wrap_for(&self, id: &str, version: u32, raw: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self.shreddable(id) {
            Some(v) => {
                let secret = v.ensure(id)?;
                Ok(seal_shreddable(
                    &shred_kek(&self.master, &secret),
                    id,
                    version,
                    raw,
                ))
            }
            None => Ok(seal_wrapped(&self.master, id, version, raw)),
        }
    }

    fn shreddable(&self, id: &str) -> Option<&vault::Vault> {
        self.vault
            .as_deref()
            .filter(|_| uuid::Uuid::parse_str(id).is_ok())
    }

    /// A stored key wrapped the older way (master key alone) re-wrapped with its tenant's shred
    /// secret: `None` when it is so already, or when there is no vault.
    pub fn adopt(
        &self,
        id: &str,
        version: u32,
        wrapped: &[u8],
    ) -> Result<Option<Vec<u8>>, CryptoError> {
        let Some(v) = self.shreddable(id) else {
            return Ok(None);
        };
        if let Some(secret) = v.secret(id)? {
            if self.open_shreddable(id, version, wrapped, &secret).is_ok() {
                return Ok(None);
            }
        }
        let raw = match open_wrapped(&self.master, id, version, wrapped) {
            Ok(raw) => raw,
            Err(e) => match &self.previous {
                Some(p) => open_wrapped(p, id, version, wrapped)?,
                None => return Err(e),
            },
        };
        self.wrap_for(id, version, &raw).map(Some)
    }

    fn open_shreddable(
        &self,
        id: &str,
        version: u32,
        wrapped: &[u8],
        secret: &[u8; 32],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        let kek = self
            .org_keks
            .get_or(id, || Ok(shred_kek(&self.master, secret)))?;
        match open_shreddable(&kek, id, version, wrapped) {
            Ok(raw) => Ok(raw),
            Err(e) => match &self.previous {
                Some(p) => open_shreddable(&shred_kek(p, secret), id, version, wrapped),
                None => Err(e),
            },
        }
    }

    /// Whether a previous master key is configured (a rotation is under way).
    pub fn rotating_master(&self) -> bool {
        self.previous.is_some()
    }

    /// A stored wrapped key (data key `id`, `version`) re-wrapped under the current master key:
    /// `None` when it is wrapped under the current master already, an error when it opens under
    /// neither master key.
    pub fn rewrap(
        &self,
        id: &str,
        version: u32,
        wrapped: &[u8],
    ) -> Result<Option<Vec<u8>>, CryptoError> {
        if let Some(secret) = self
            .shreddable(id)
            .map(|v| v.secret(id))
            .transpose()?
            .flatten()
        {
            if open_shreddable(&shred_kek(&self.master, &secret), id, version, wrapped).is_ok() {
                return Ok(None);
            }
            if let Some(p) = &self.previous {
                if let Ok(raw) = open_shreddable(&shred_kek(p, &secret), id, version, wrapped) {
                    let kek = shred_kek(&self.master, &secret);
                    return Ok(Some(seal_shreddable(&kek, id, version, &raw)));
                }
            }
        }
        if open_wrapped(&self.master, id, version, wrapped).is_ok() {
            return Ok(None);
        }
        let previous = self.previous.as_ref().ok_or(CryptoError::Open)?;
        let raw = open_wrapped(previous, id, version, wrapped)?;
        Ok(Some(seal_wrapped(&self.master, id, version, &raw)))
    }

    /// The root of the backups' keys (see `BackupRoot`).
    pub fn backup_root(&self) -> BackupRoot {
        BackupRoot::from_master(&self.master)
    }

    /// Encrypts an account-data field bound to its place: under the platform field key, and for
    /// an account's own personal data (`ad.account`) under that account's shred secret too. That
    /// secret must exist (`new_account_secret`): `Shredded` when the account was erased.
    pub fn seal_field(&self, ad: &FieldAd<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if let Some(key) = ad
            .account
            .map(|a| self.account_field_key(a))
            .transpose()?
            .flatten()
        {
            return Ok(seal_as(
                FIELD_FORMAT_ACCOUNT,
                &key,
                self.platform.version,
                &ad.bytes(),
                plaintext,
            ));
        }
        Ok(self.seal_platform_field(ad, plaintext))
    }

    /// Encrypts a field under the platform field key alone, whatever `ad.account` says: for
    /// platform data that is no one's personal data, and for an erased account's placeholders.
    pub fn seal_platform_field(&self, ad: &FieldAd<'_>, plaintext: &[u8]) -> Vec<u8> {
        seal(
            &self.platform.field,
            self.platform.version,
            &ad.bytes(),
            plaintext,
        )
    }

    /// Opens a field `seal_field` made. One sealed under an account's secret opens only while
    /// that secret exists (`Shredded` once it is gone); one under the platform key alone (made
    /// before accounts had secrets, or an erased account's placeholder) opens as before.
    pub fn open_field(&self, ad: &FieldAd<'_>, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if ciphertext.first() == Some(&FIELD_FORMAT_ACCOUNT) {
            let account = ad.account.ok_or(CryptoError::Open)?;
            let key = self
                .account_field_key(account)?
                .ok_or(CryptoError::Shredded)?;
            return open_as(
                FIELD_FORMAT_ACCOUNT,
                &key,
                self.platform.version,
                &ad.bytes(),
                ciphertext,
            );
        }
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

    /// A keyed MAC over arbitrary bytes with a purpose label (e.g. for audit checkpoints), under
    /// a key derived from the platform data key (which a master key rotation keeps).
    pub fn mac(&self, label: &str, data: &[u8]) -> String {
        hmac_hex(&self.mac.derive(label), data)
    }

    /// Whether `mac` is `self.mac(label, data)`, compared in constant time. Values signed before
    /// MACs moved to the platform key (under a key derived from the master key itself) are
    /// accepted while that master key is configured, as the current or the previous one.
    pub fn verify_mac(&self, label: &str, data: &[u8], mac: &str) -> bool {
        use subtle::ConstantTimeEq;
        let matches =
            |k: &KeyBytes| -> bool { hmac_hex(k, data).as_bytes().ct_eq(mac.as_bytes()).into() };
        matches(&self.mac.derive(label))
            || matches(&self.master.derive(label))
            || self
                .previous
                .as_ref()
                .is_some_and(|p| matches(&p.derive(label)))
    }
}

/// A tenant's data key, unwrapped: seals and opens that tenant's fields. Deleting the wrapped key
/// from the database makes every ciphertext under it unreadable (crypto-shredding).
pub struct TenantKey {
    scope: String,
    key: DataKey,
    /// During a rotation of this tenant's key (`strongroom keys rotate --org`): the key being
    /// rotated away from, which opens what is not re-sealed yet.
    previous: Option<DataKey>,
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
            account: None,
        };
        seal(&self.key.field, self.key.version, &ad.bytes(), plaintext)
    }

    /// Opens a field sealed under this key, or (during a rotation) under the previous one.
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
            account: None,
        };
        let key = match (&self.previous, sealed_version(ciphertext)) {
            (Some(p), Some(v)) if v == p.version => p,
            _ => &self.key,
        };
        open(&key.field, key.version, &ad.bytes(), ciphertext)
    }

    /// The version of this tenant's current data key.
    pub fn version(&self) -> u32 {
        self.key.version
    }

    /// Whether a rotation of this key is under way (the previous key is held too).
    pub fn rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// A field still sealed under the previous key, opened and sealed again under the current
    /// one; `None` when it is sealed under the current key already.
    pub fn reseal(
        &self,
        table: &str,
        column: &str,
        row: &str,
        ciphertext: &[u8],
    ) -> Result<Option<Vec<u8>>, CryptoError> {
        if sealed_version(ciphertext) == Some(self.key.version) {
            return Ok(None);
        }
        let mut plain = self.open(table, column, row, ciphertext)?;
        let out = self.seal(table, column, row, &plain);
        plain.zeroize();
        Ok(Some(out))
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
        search_hash(&self.key, term)
    }

    /// What a query term may be indexed under: its hash under the current key and, during a
    /// rotation, under the previous key too (texts not re-indexed yet).
    pub fn search_term_variants(&self, term: &str) -> Vec<String> {
        let mut out = vec![search_hash(&self.key, term)];
        if let Some(p) = &self.previous {
            out.push(search_hash(p, term));
        }
        out
    }
}

fn search_hash(key: &DataKey, term: &str) -> String {
    let mut h = hmac_hex(&key.blind_index, format!("search|{term}").as_bytes());
    h.truncate(16);
    h
}

/// The key version a field ciphertext names in its header.
fn sealed_version(data: &[u8]) -> Option<u32> {
    (data.len() >= 5 && data[0] == FIELD_FORMAT_V1)
        .then(|| u32::from_be_bytes([data[1], data[2], data[3], data[4]]))
}

impl Keyring {
    /// A fresh data key for tenant `id`: the key to use now, and its wrapped form to store.
    pub fn new_tenant_key(&self, id: &str) -> Result<(TenantKey, WrappedKey), CryptoError> {
        let root = KeyBytes::random();
        let wrapped = self.wrap_for(id, 1, &root.0)?;
        Ok((
            TenantKey {
                scope: id.to_string(),
                key: DataKey::new(1, &root),
                previous: None,
            },
            WrappedKey {
                version: 1,
                wrapped,
            },
        ))
    }

    /// Unwraps tenant `id`'s stored key. During a rotation the stored key is a pair: the new
    /// key (this version) and the one before it (the version before).
    pub fn open_tenant_key(&self, id: &str, stored: &WrappedKey) -> Result<TenantKey, CryptoError> {
        let raw = self.unwrap_raw(id, stored.version, &stored.wrapped)?;
        let (current, previous) = split_keys(&raw)?;
        Ok(TenantKey {
            scope: id.to_string(),
            key: DataKey::new(stored.version, &current),
            previous: match previous {
                Some(p) if stored.version > 1 => Some(DataKey::new(stored.version - 1, &p)),
                Some(_) => return Err(CryptoError::Open),
                None => None,
            },
        })
    }

    /// The start of a rotation of tenant `id`'s key: a fresh key, stored (one version up) paired
    /// with the current one so that both open until every field is re-sealed. `None` when a
    /// rotation is under way already (`stored` is a pair).
    pub fn begin_tenant_rotation(
        &self,
        id: &str,
        stored: &WrappedKey,
    ) -> Result<Option<WrappedKey>, CryptoError> {
        let raw = self.unwrap_raw(id, stored.version, &stored.wrapped)?;
        if raw.len() != 32 {
            return Ok(None);
        }
        let fresh = KeyBytes::random();
        let mut pair = zeroize::Zeroizing::new(Vec::with_capacity(64));
        pair.extend_from_slice(&fresh.0);
        pair.extend_from_slice(&raw);
        let version = stored.version + 1;
        Ok(Some(WrappedKey {
            version,
            wrapped: self.wrap_for(id, version, &pair)?,
        }))
    }

    /// The end of a rotation: the new key alone, wrapped at its version (the previous key is
    /// dropped); `None` when `stored` is not a pair.
    pub fn finish_tenant_rotation(
        &self,
        id: &str,
        stored: &WrappedKey,
    ) -> Result<Option<WrappedKey>, CryptoError> {
        let raw = self.unwrap_raw(id, stored.version, &stored.wrapped)?;
        if raw.len() != 64 {
            return Ok(None);
        }
        Ok(Some(WrappedKey {
            version: stored.version,
            wrapped: self.wrap_for(id, stored.version, &raw[..32])?,
        }))
    }

    fn unwrap_raw(
        &self,
        id: &str,
        version: u32,
        wrapped: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        let shreddable = self.shreddable(id);
        // The request path: the org's wrapping key, derived once, opens the stored key.
        if let Some(kek) = shreddable.and_then(|_| self.org_keks.0.read().ok()?.get(id).cloned()) {
            if let Ok(raw) = open_shreddable(&kek, id, version, wrapped) {
                return Ok(raw);
            }
        }
        if let Some(secret) = shreddable.map(|v| v.secret(id)).transpose()?.flatten() {
            if let Ok(raw) = self.open_shreddable(id, version, wrapped, &secret) {
                return Ok(raw);
            }
        }
        // Wrapped before the vault existed (until `adopt` re-wraps it), or no vault.
        let legacy = match open_wrapped(&self.master, id, version, wrapped) {
            Ok(raw) => Ok(raw),
            Err(e) => match &self.previous {
                Some(p) => open_wrapped(p, id, version, wrapped),
                None => Err(e),
            },
        };
        match legacy {
            Err(_) if shreddable.is_some_and(|v| matches!(v.secret(id), Ok(None))) => {
                Err(CryptoError::Shredded)
            }
            other => other,
        }
    }
}

/// The key wrapping a tenant's data key: derived from the master key and the tenant's shred
/// secret together (HKDF-SHA256, the secret as salt), so that neither alone opens it.
fn shred_kek(master: &KeyBytes, secret: &[u8; 32]) -> KeyBytes {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(secret), &master.0);
    let mut out = [0u8; 32];
    // 32 bytes is always a valid HKDF-SHA256 output length.
    hk.expand(b"strongroom:tenant-wrap:v2", &mut out)
        .unwrap_or_default();
    KeyBytes(out)
}

fn seal_shreddable(kek: &KeyBytes, id: &str, version: u32, raw: &[u8]) -> Vec<u8> {
    let ad = format!("strongroom:wrap:v2|{id}|{version}");
    seal(kek, version, ad.as_bytes(), raw)
}

fn open_shreddable(
    kek: &KeyBytes,
    id: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
    let ad = format!("strongroom:wrap:v2|{id}|{version}");
    open(kek, version, ad.as_bytes(), wrapped).map(zeroize::Zeroizing::new)
}

/// A stored key's bytes: one key, or a rotation's pair (new, previous).
fn split_keys(raw: &[u8]) -> Result<(KeyBytes, Option<KeyBytes>), CryptoError> {
    match raw.len() {
        32 => Ok((KeyBytes::from_slice(raw).ok_or(CryptoError::Open)?, None)),
        64 => Ok((
            KeyBytes::from_slice(&raw[..32]).ok_or(CryptoError::Open)?,
            Some(KeyBytes::from_slice(&raw[32..]).ok_or(CryptoError::Open)?),
        )),
        _ => Err(CryptoError::Open),
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

/// Key bytes (one key or a rotation's pair) sealed under a master key, bound to the data key's id
/// and version.
fn seal_wrapped(master: &KeyBytes, id: &str, version: u32, raw: &[u8]) -> Vec<u8> {
    let ad = format!("strongroom:wrap:v1|{id}|{version}");
    seal(master, version, ad.as_bytes(), raw)
}

fn open_wrapped(
    master: &KeyBytes,
    id: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
    let ad = format!("strongroom:wrap:v1|{id}|{version}");
    open(master, version, ad.as_bytes(), wrapped).map(zeroize::Zeroizing::new)
}

/// A platform key: one key, never a pair.
fn unwrap_either(
    master: &KeyBytes,
    previous: Option<&KeyBytes>,
    id: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<KeyBytes, CryptoError> {
    let raw = match open_wrapped(master, id, version, wrapped) {
        Ok(raw) => raw,
        Err(e) => match previous {
            Some(p) => open_wrapped(p, id, version, wrapped)?,
            None => return Err(e),
        },
    };
    KeyBytes::from_slice(&raw).ok_or(CryptoError::Open)
}

/// Whether a field ciphertext is sealed under an account's shred secret (`seal_field`).
pub fn sealed_for_account(ciphertext: &[u8]) -> bool {
    ciphertext.first() == Some(&FIELD_FORMAT_ACCOUNT)
}

fn seal(key: &KeyBytes, version: u32, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal_as(FIELD_FORMAT_V1, key, version, ad, plaintext)
}

fn open(key: &KeyBytes, version: u32, ad: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    open_as(FIELD_FORMAT_V1, key, version, ad, data)
}

/// Layout: format byte ‖ key version (u32 BE) ‖ 24-byte nonce ‖ ciphertext+tag. The header is
/// authenticated too.
fn seal_as(format: u8, key: &KeyBytes, version: u32, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(1 + 4 + NONCE_LEN + plaintext.len() + 16);
    out.push(format);
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

fn open_as(
    format: u8,
    key: &KeyBytes,
    version: u32,
    ad: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if data.len() < 1 + 4 + NONCE_LEN + 16 || data[0] != format {
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
    fn an_org_key_wrapped_with_its_shred_secret_dies_with_the_secret() {
        let dir = tempfile::tempdir().expect("dir");
        let vault = std::sync::Arc::new(vault::Vault::open(&dir.path().join("vault")).expect("v"));
        let master = KeyBytes::random();
        let (plain, platform) = Keyring::open(master.clone(), None).expect("keyring");
        let platform = platform.expect("created");
        let id = uuid::Uuid::now_v7().to_string();
        // Made before there was a vault: wrapped under the master key alone.
        let (old_key, legacy) = plain.new_tenant_key(&id).expect("key");
        let ring = Keyring::open(master.clone(), Some(platform.clone()))
            .expect("keyring")
            .0
            .with_vault(vault.clone());
        assert!(ring.open_tenant_key(&id, &legacy).is_ok(), "still opens");
        let adopted = ring
            .adopt(&id, 1, &legacy.wrapped)
            .expect("adopt")
            .expect("re-wrapped");
        assert!(ring.adopt(&id, 1, &adopted).expect("again").is_none());
        let stored = WrappedKey {
            version: 1,
            wrapped: adopted,
        };
        let key = ring.open_tenant_key(&id, &stored).expect("opens");
        let ct = old_key.seal("items", "title", "i", b"same key");
        assert_eq!(
            key.open("items", "title", "i", &ct).expect("open"),
            b"same key"
        );
        // The master key alone no longer opens it; a new org's key is made with a secret.
        assert!(plain.open_tenant_key(&id, &stored).is_err());
        let other = uuid::Uuid::now_v7().to_string();
        let (_, fresh) = ring.new_tenant_key(&other).expect("key");
        assert!(vault.secret(&other).expect("read").is_some());
        assert!(plain.open_tenant_key(&other, &fresh).is_err());
        // Without the secret, nothing opens it any more.
        vault.destroy(&id).expect("destroy");
        let reopened = Keyring::open(master, Some(platform))
            .expect("keyring")
            .0
            .with_vault(std::sync::Arc::new(
                vault::Vault::open(vault.dir()).expect("v"),
            ));
        assert!(matches!(
            reopened.open_tenant_key(&id, &stored),
            Err(CryptoError::Shredded)
        ));
        assert!(reopened.open_tenant_key(&other, &fresh).is_ok());
    }

    #[test]
    fn an_accounts_fields_sealed_with_its_secret_die_with_the_secret() {
        let dir = tempfile::tempdir().expect("dir");
        let accounts =
            std::sync::Arc::new(vault::Vault::open(&dir.path().join("accounts")).expect("v"));
        let master = KeyBytes::random();
        let (bare, platform) = Keyring::open(master.clone(), None).expect("keyring");
        let platform = platform.expect("created");
        let ring = Keyring::open(master.clone(), Some(platform.clone()))
            .expect("keyring")
            .0
            .with_account_vault(accounts.clone());
        let (alice, bob) = (
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
        );
        fn email(id: &str) -> FieldAd<'_> {
            FieldAd {
                scope: "platform",
                table: "users",
                column: "email",
                row: "r",
                account: Some(id),
            }
        }
        let (a, b) = (alice.as_str(), bob.as_str());
        // Sealing never makes a secret: an account without one cannot be sealed for.
        assert!(matches!(
            ring.seal_field(&email(a), b"a@example.com"),
            Err(CryptoError::Shredded)
        ));
        ring.new_account_secret(a).expect("secret");
        ring.new_account_secret(b).expect("secret");
        let ct = ring.seal_field(&email(a), b"a@example.com").expect("seal");
        assert!(sealed_for_account(&ct));
        assert_eq!(
            ring.open_field(&email(a), &ct).expect("open"),
            b"a@example.com"
        );
        // Bound to its account: another account's secret does not open it...
        assert!(matches!(
            ring.open_field(&email(b), &ct),
            Err(CryptoError::Open)
        ));
        // ...nor does the platform key (the master key) without the vault.
        assert!(bare.open_field(&email(a), &ct).is_err());
        // What was sealed under the platform key alone (before accounts had secrets, or an
        // erased account's placeholder) opens as before.
        let legacy = bare
            .seal_field(&email(a), b"old@example.com")
            .expect("seal");
        assert!(!sealed_for_account(&legacy));
        assert_eq!(
            ring.open_field(&email(a), &legacy).expect("open"),
            b"old@example.com"
        );
        let placeholder = ring.seal_platform_field(&email(a), b"deleted");
        assert!(!sealed_for_account(&placeholder));
        // Erasure destroys the secret: the field never opens again, in this process or another,
        // and nothing can be sealed for the account again.
        assert!(!ring.account_erased(a, &ct));
        ring.destroy_account_secret(a).expect("destroy");
        assert!(ring.account_erased(a, &ct));
        assert!(!ring.account_erased(a, &placeholder));
        assert!(matches!(
            ring.open_field(&email(a), &ct),
            Err(CryptoError::Shredded)
        ));
        assert!(ring.seal_field(&email(a), b"again").is_err());
        let reopened = Keyring::open(master.clone(), Some(platform.clone()))
            .expect("keyring")
            .0
            .with_account_vault(std::sync::Arc::new(
                vault::Vault::open(accounts.dir()).expect("v"),
            ));
        assert!(matches!(
            reopened.open_field(&email(a), &ct),
            Err(CryptoError::Shredded)
        ));
        let bobs = ring.seal_field(&email(b), b"b@example.com").expect("seal");
        assert_eq!(
            reopened.open_field(&email(b), &bobs).expect("open"),
            b"b@example.com"
        );
        assert_eq!(
            reopened.open_field(&email(a), &placeholder).expect("open"),
            b"deleted"
        );
        // The account's key is derived once per process: a secret removed behind the keyring's
        // back (another process's erasure) still opens here, and nowhere that starts afresh.
        accounts.destroy(b).expect("destroy");
        assert!(ring.open_field(&email(b), &bobs).is_ok());
        let fresh = Keyring::open(master, Some(platform))
            .expect("keyring")
            .0
            .with_account_vault(std::sync::Arc::new(
                vault::Vault::open(accounts.dir()).expect("v"),
            ));
        assert!(matches!(
            fresh.open_field(&email(b), &bobs),
            Err(CryptoError::Shredded)
        ));
    }

    #[test]
    fn field_round_trips_and_is_bound_to_its_row() {
        let k = ring();
        let ad = FieldAd {
            scope: "platform",
            table: "users",
            column: "email",
            row: "a",
            account: None,
        };
        let ct = k.seal_field(&ad, b"alice@example.com").expect("seal");
        assert_eq!(k.open_field(&ad, &ct).expect("open"), b"alice@example.com");
        let other = FieldAd { row: "b", ..ad };
        assert!(k.open_field(&other, &ct).is_err());
        let other_col = FieldAd {
            scope: "platform",
            table: "users",
            column: "display_name",
            row: "a",
            account: None,
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
                    row: "a",
                    account: None,
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
        let (a, wrapped) = k.new_tenant_key("org-a").expect("key");
        let ct = a.seal("workspaces", "name", "w1", b"Project Falcon");
        let reopened = k.open_tenant_key("org-a", &wrapped).expect("unwrap");
        assert_eq!(
            reopened
                .open("workspaces", "name", "w1", &ct)
                .expect("open"),
            b"Project Falcon"
        );
        assert!(reopened.open("workspaces", "name", "w2", &ct).is_err());
        let (b, _) = k.new_tenant_key("org-b").expect("key");
        assert!(b.open("workspaces", "name", "w1", &ct).is_err());
        // A wrapped key moved to another tenant does not unwrap.
        assert!(k.open_tenant_key("org-b", &wrapped).is_err());
    }

    #[test]
    fn a_master_rotation_rewraps_keys_and_keeps_macs_valid() {
        let (old, new) = (KeyBytes::random(), KeyBytes::random());
        let (k1, created) = Keyring::open(old.clone(), None).expect("create");
        let platform = created.expect("wrapped");
        let (_, org_wrapped) = k1.new_tenant_key("org-a").expect("key");
        let sig = k1.mac("label", b"data");
        // New master alone: nothing opens yet.
        assert!(Keyring::open(
            new.clone(),
            Some(WrappedKey {
                version: 1,
                wrapped: platform.wrapped.clone()
            })
        )
        .is_err());
        // New master with the previous one: everything opens, and re-wraps under the new one.
        let (both, _) = Keyring::open_rotating(
            new.clone(),
            Some(old.clone()),
            Some(WrappedKey {
                version: 1,
                wrapped: platform.wrapped.clone(),
            }),
        )
        .expect("open with previous");
        assert!(both.open_tenant_key("org-a", &org_wrapped).is_ok());
        let p2 = both
            .rewrap("platform", 1, &platform.wrapped)
            .expect("rewrap")
            .expect("changed");
        let o2 = both
            .rewrap("org-a", 1, &org_wrapped.wrapped)
            .expect("rewrap")
            .expect("changed");
        assert!(both.rewrap("org-a", 1, &o2).expect("again").is_none());
        assert!(both.rewrap("org-b", 1, &o2).is_err(), "bound to its id");
        let (k2, _) = Keyring::open(
            new,
            Some(WrappedKey {
                version: 1,
                wrapped: p2.clone(),
            }),
        )
        .expect("new alone");
        let org = k2
            .open_tenant_key(
                "org-a",
                &WrappedKey {
                    version: 1,
                    wrapped: o2,
                },
            )
            .expect("org key under the new master");
        let reopened = k1.open_tenant_key("org-a", &org_wrapped).expect("old");
        let ct = reopened.seal("t", "c", "r", b"x");
        assert_eq!(org.open("t", "c", "r", &ct).expect("same key"), b"x");
        assert!(
            k2.verify_mac("label", b"data", &sig),
            "MACs outlive the master key"
        );
        assert!(!k2.verify_mac("label", b"other", &sig));
        // The old master alone opens nothing any more.
        assert!(Keyring::open(
            old,
            Some(WrappedKey {
                version: 1,
                wrapped: p2
            })
        )
        .is_err());
    }

    #[test]
    fn an_org_key_rotation_opens_both_versions_until_it_ends() {
        let k = ring();
        let (v1, w1) = k.new_tenant_key("org-a").expect("key");
        let old_ct = v1.seal("items", "title", "i1", b"Falcon");
        let old_term = v1.search_term("falcon");
        let pair = k
            .begin_tenant_rotation("org-a", &w1)
            .expect("begin")
            .expect("pair");
        assert_eq!(pair.version, 2);
        assert!(k
            .begin_tenant_rotation("org-a", &pair)
            .expect("again")
            .is_none());
        let during = k.open_tenant_key("org-a", &pair).expect("open pair");
        assert!(during.rotating() && during.version() == 2);
        assert_eq!(
            during.open("items", "title", "i1", &old_ct).expect("old"),
            b"Falcon"
        );
        let new_ct = during
            .reseal("items", "title", "i1", &old_ct)
            .expect("reseal")
            .expect("changed");
        assert!(during
            .reseal("items", "title", "i1", &new_ct)
            .expect("same")
            .is_none());
        assert!(
            during.reseal("items", "title", "i2", &old_ct).is_err(),
            "bound to its row"
        );
        assert_eq!(during.search_term_variants("falcon")[1], old_term);
        assert_ne!(during.search_term("falcon"), old_term);
        let single = k
            .finish_tenant_rotation("org-a", &pair)
            .expect("finish")
            .expect("single");
        assert!(k
            .finish_tenant_rotation("org-a", &single)
            .expect("again")
            .is_none());
        let after = k.open_tenant_key("org-a", &single).expect("open");
        assert!(!after.rotating());
        assert_eq!(
            after.open("items", "title", "i1", &new_ct).expect("new"),
            b"Falcon"
        );
        assert!(
            after.open("items", "title", "i1", &old_ct).is_err(),
            "the old key is gone"
        );
        assert_eq!(after.search_term_variants("falcon").len(), 1);
    }

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).expect("b64").len(), 32);
        assert_ne!(a, new_token());
    }
}
