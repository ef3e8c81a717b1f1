//! Argon2id password hashing on a bounded blocking pool, and the password policy
//! (NIST SP 800-63B: length in code points, no composition rules, never truncated, blocklist by
//! a strength estimator, nothing that contains the user's own email or name).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

use crate::config::PasswordConfig;

/// Hashes and verifies passwords; at most `hash_concurrency` run at once.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the account does not exist so that
    /// an unknown email costs the same work as a wrong password.
    dummy: Arc<String>,
    /// Hashes computed so far (verifications included): lets a test show that every branch of a
    /// login costs the same number.
    computed: Arc<AtomicU64>,
    /// Argon2's working memory (19 MiB at the default cost), kept for the next hash: allocated
    /// and freed per hash, glibc raised its mmap threshold after the first free and kept each
    /// freed block in the arena of the blocking thread that used it, so a burst of logins on
    /// many threads left hundreds of MiB resident. At most `hash_concurrency` buffers exist.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2: {0}")]
    Argon(String),
    #[error("hashing task failed")]
    Join,
}

/// Outcome of a verification.
pub struct Verified {
    pub ok: bool,
    /// The stored hash uses weaker parameters than configured: store a new one.
    pub needs_rehash: bool,
}

impl PasswordHasher {
    pub fn new(cfg: &PasswordConfig) -> Result<Self, HashError> {
        let params = Params::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_parallelism,
            None,
        )
        .map_err(|e| HashError::Argon(e.to_string()))?;
        let memory = Arc::new(Mutex::new(Vec::new()));
        let salt = SaltString::generate(&mut OsRng);
        let dummy = with_memory(&memory, params.block_count(), |blocks| {
            hash_phc(
                &Self::argon(params.clone()),
                crate::crypto::new_token().as_bytes(),
                salt.as_salt(),
                blocks,
            )
        })
        .map_err(|e| HashError::Argon(e.to_string()))?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(cfg.hash_concurrency.max(1))),
            dummy: Arc::new(dummy),
            computed: Arc::new(AtomicU64::new(0)),
            memory,
        })
    }

    fn argon(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// A PHC string for the (normalized) password.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let pw = normalize(password);
        let params = self.params.clone();
        let memory = self.memory.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            with_memory(&memory, params.block_count(), |blocks| {
                hash_phc(
                    &Self::argon(params.clone()),
                    pw.as_bytes(),
                    salt.as_salt(),
                    blocks,
                )
            })
            .map_err(|e| HashError::Argon(e.to_string()))
        })
        .await
    }

    /// Verifies against `phc`, or against the dummy hash when there is no account.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<Verified, HashError> {
        let pw = normalize(password);
        let real = phc.is_some();
        let phc = phc
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy.as_str().to_owned());
        let params = self.params.clone();
        let memory = self.memory.clone();
        self.run(move || {
            let parsed = PasswordHash::new(&phc).map_err(|e| HashError::Argon(e.to_string()))?;
            let ok = verify_phc(&memory, pw.as_bytes(), &parsed).is_ok() && real;
            let needs_rehash = ok && weaker(&parsed, &params);
            Ok(Verified { ok, needs_rehash })
        })
        .await
    }

    /// How many hashes this hasher has computed (verifications included).
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        // The permit moves into the blocking task: a cancelled request does not free its slot
        // while its hash is still being computed.
        let waiting = metrics::gauge!("strongroom_password_hash_waiting");
        waiting.increment(1.0);
        let permit = self.permits.clone().acquire_owned().await;
        waiting.decrement(1.0);
        let permit = permit.map_err(|_| HashError::Join)?;
        self.computed.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let running = metrics::gauge!("strongroom_password_hash_running");
            running.increment(1.0);
            let out = f();
            running.decrement(1.0);
            out
        })
        .await
        .map_err(|_| HashError::Join)?
    }
}

/// Runs `f` with at least `blocks` blocks of Argon2 working memory from the pool (or new), and
/// puts the memory back.
fn with_memory<T>(
    pool: &Mutex<Vec<Vec<Block>>>,
    blocks: usize,
    f: impl FnOnce(&mut [Block]) -> T,
) -> T {
    let mut memory = pool
        .lock()
        .map(|mut p| p.pop())
        .unwrap_or_default()
        .unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let out = f(&mut memory);
    if let Ok(mut p) = pool.lock() {
        p.push(memory);
    }
    out
}

/// The PHC string of `password` under `argon` with `salt`, computed in `memory` (what
/// `argon2::PasswordHasher::hash_password` does, in memory the caller keeps).
fn hash_phc(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'_>,
    memory: &mut [Block],
) -> argon2::password_hash::Result<String> {
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let params = argon.params();
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)
            .map_err(Into::into)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt),
        hash: Some(output),
    }
    .to_string())
}

/// Whether `password` matches `hash` (its own algorithm, version and parameters), compared in
/// constant time (`Output`'s equality), computed in pooled memory.
fn verify_phc(
    pool: &Mutex<Vec<Vec<Block>>>,
    password: &[u8],
    hash: &PasswordHash<'_>,
) -> argon2::password_hash::Result<()> {
    use argon2::password_hash::Error;
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Err(Error::Password);
    };
    let algorithm = Algorithm::try_from(hash.algorithm)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(hash)?;
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let computed = with_memory(pool, blocks, |memory| {
        Output::init_with(expected.len(), |out| {
            argon
                .hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)
                .map_err(Into::into)
        })
    })?;
    if &computed == expected {
        Ok(())
    } else {
        Err(Error::Password)
    }
}

fn weaker(h: &PasswordHash<'_>, want: &Params) -> bool {
    if h.algorithm.as_str() != "argon2id" {
        return true;
    }
    let get = |k: &str| h.params.get_decimal(k).unwrap_or(0);
    get("m") < want.m_cost() || get("t") < want.t_cost() || get("p") < want.p_cost()
}

/// NFKC, as SP 800-63B recommends, so the same password typed on another keyboard still matches.
fn normalize(pw: &str) -> String {
    pw.nfkc().collect()
}

/// Why a password was refused, in words a person can act on.
pub fn check_policy(
    cfg: &PasswordConfig,
    password: &str,
    email: &str,
    display_name: &str,
) -> Result<(), String> {
    let pw = normalize(password);
    let len = pw.chars().count();
    if len < cfg.min_length {
        return Err(format!("Use at least {} characters (this one has {len}). A few unrelated words make a strong, memorable password.", cfg.min_length));
    }
    if len > cfg.max_length {
        return Err(format!("Use at most {} characters.", cfg.max_length));
    }
    let lower = pw.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if (!email.is_empty() && lower.contains(&email))
        || (local.chars().count() >= 3 && lower.contains(local))
    {
        return Err("The password must not contain your email address.".into());
    }
    let name = display_name.trim().to_lowercase();
    let has_name_part = name
        .split_whitespace()
        .any(|p| p.chars().count() >= 4 && lower.contains(p));
    if (name.chars().count() >= 3 && lower.contains(&name)) || has_name_part {
        return Err("The password must not contain your name.".into());
    }
    // The estimator's cost grows with length; the first 100 characters tell whether it is weak.
    let sample: String = pw.chars().take(100).collect();
    let inputs: Vec<&str> = [email.as_str(), local, name.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let estimate = zxcvbn::zxcvbn(&sample, &inputs);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "It is too easy to guess.".into());
        return Err(format!("This password is too weak or too common: {hint}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PasswordConfig {
        PasswordConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..PasswordConfig::default()
        }
    }

    #[test]
    fn policy_follows_sp800_63b() {
        let c = PasswordConfig::default();
        assert!(check_policy(&c, "short", "a@b.co", "A").is_err());
        // 14 code points: too short even though it is 28 bytes.
        assert!(check_policy(&c, "ééééééééééééé1", "a@b.co", "A").is_err());
        assert!(check_policy(&c, "passwordpassword", "a@b.co", "A")
            .unwrap_err()
            .contains("weak"));
        assert!(
            check_policy(&c, "velvet-giraffe-alice-harbor", "alice@example.com", "Al")
                .unwrap_err()
                .contains("email")
        );
        assert!(check_policy(
            &c,
            "velvet-giraffe-Roberta-harbor",
            "x@example.com",
            "roberta"
        )
        .unwrap_err()
        .contains("name"));
        assert!(check_policy(
            &c,
            "correct horse battery staple orbit",
            "x@example.com",
            "Bob"
        )
        .is_ok());
        // Any Unicode, no composition rules.
        assert!(check_policy(
            &c,
            "мой пароль очень длинный и странный",
            "x@example.com",
            "Bob"
        )
        .is_ok());
        let long: String = "tangerine-quartz-".repeat(70);
        assert!(check_policy(&c, &long, "x@example.com", "Bob")
            .unwrap_err()
            .contains("at most"));
    }

    #[tokio::test]
    async fn hash_verifies_and_is_never_truncated() {
        let h = PasswordHasher::new(&cfg()).expect("hasher");
        let long = "x".repeat(300);
        let phc = h.hash(&long).await.expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify(&long, Some(&phc)).await.expect("v").ok);
        assert!(!h.verify(&"x".repeat(299), Some(&phc)).await.expect("v").ok);
        assert!(!h.verify(&long, None).await.expect("v").ok);
    }

    #[tokio::test]
    async fn weaker_hashes_are_flagged_for_rehash() {
        let weak = PasswordHasher::new(&cfg()).expect("hasher");
        let phc = weak.hash("some long passphrase here").await.expect("hash");
        let strong = PasswordHasher::new(&PasswordConfig {
            argon2_memory_kib: 128,
            ..cfg()
        })
        .expect("hasher");
        let v = strong
            .verify("some long passphrase here", Some(&phc))
            .await
            .expect("v");
        assert!(v.ok && v.needs_rehash);
    }

    #[tokio::test]
    async fn pooled_hashing_matches_the_argon2_crates_own_hash_and_verify() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let h = PasswordHasher::new(&cfg()).expect("hasher");
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, h.params.clone());
        // Theirs verifies ours (right password only)...
        let ours = h.hash("a long enough passphrase").await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(theirs
            .verify_password(b"a long enough passphrase", &parsed)
            .is_ok());
        assert!(theirs
            .verify_password(b"another passphrase", &parsed)
            .is_err());
        // ...and ours verifies theirs, also under other parameters than configured.
        let salt = SaltString::generate(&mut OsRng);
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(96, 2, 1, None).expect("params"),
        );
        let phc = other
            .hash_password(b"a long enough passphrase", &salt)
            .expect("hash")
            .to_string();
        assert!(
            h.verify("a long enough passphrase", Some(&phc))
                .await
                .expect("v")
                .ok
        );
        assert!(
            !h.verify("a long enough passphrasE", Some(&phc))
                .await
                .expect("v")
                .ok
        );
        // The same salt and parameters give the same string.
        let same = with_memory(&h.memory, 96, |m| {
            hash_phc(&other, b"a long enough passphrase", salt.as_salt(), m)
        })
        .expect("ours");
        assert_eq!(same, phc);
        // Memory is reused, not grown per hash: at most one buffer per hash at once.
        for _ in 0..5 {
            h.hash("a long enough passphrase").await.expect("hash");
        }
        assert_eq!(h.memory.lock().map(|p| p.len()).unwrap_or(0), 1);
    }
}
