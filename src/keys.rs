//! Key rotation, run by the operator while the server keeps serving.
//!
//! **Master key** (`strongroom keys rotate`): the operator makes the new key the master key and
//! names the old one as `previous_master_key_file`; the server (restarted with both, one instance
//! at a time) opens keys wrapped under either. The command re-wraps every stored data key under
//! the new master key, one key per transaction, each replaced only if unchanged meanwhile, so a
//! run cut short is simply run again. When it reports that every key opens under the new master
//! key, the old one can go. Nothing else is sealed under the master key: the MACs of long-lived
//! values (audit checkpoints among them) are keyed from the platform data key, which a re-wrap
//! keeps, so they verify as before.
//!
//! **An org's data key** (`strongroom keys rotate --org ID`): a new key version is stored as a
//! pair (new key, previous key) wrapped under the master key; from that commit on, every request
//! seals under the new key and opens under either (a ciphertext names its key version), and a
//! search looks each word up under both keys. The command then re-seals every sealed column of the
//! org a batch at a time (each value replaced only if unchanged meanwhile) and re-indexes each
//! item and comment it re-sealed; document content keys are re-wrapped under the new key (the
//! objects themselves are sealed under their own content keys, which do not change). After a grace
//! period (no write begun under the old key can still be running) a last pass checks that nothing
//! is left under the old key, and the pair is replaced by the new key alone: the old key is gone.
//! A crash at any point leaves a state the next run resumes from: the pair says a rotation is
//! under way, and values already under the new key are skipped.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Action, Event};
use crate::crypto::{Keyring, TenantKey, WrappedKey};
use crate::store::keys::{self as db, SealedColumn, Stored, Value};
use crate::store::tenant::TenantTx;
use crate::store::{self, Db};

/// What `strongroom keys rotate` did.
#[derive(Debug, Serialize)]
pub struct MasterRotation {
    /// Data keys stored.
    pub keys: u64,
    /// Of which re-wrapped by this run (the others were under the new master key already).
    pub rewrapped: u64,
}

/// Re-wraps every stored data key under the current master key (see the module comment).
/// Wraps every org key still wrapped under the master key alone with its org's shred secret
/// (made now), at start-up: from then on, deleting an org destroys its key in old backups too.
/// Each key is replaced only if unchanged (compare-and-set), so a running server's rotation is
/// never undone. Warns about keys whose secret is missing (an org deleted since the backup this
/// database was restored from, or a vault that was not carried over). Returns how many it wrapped.
pub async fn adopt_vault(db: &Db, keyring: &Keyring) -> anyhow::Result<usize> {
    if keyring.vault().is_none() {
        return Ok(0);
    }
    let ids = {
        let mut c = db.acquire().await?;
        db::all_data_keys(&mut c).await?
    };
    let mut adopted = 0;
    let mut shredded = 0;
    for (id, version) in ids
        .iter()
        .filter(|(id, _)| uuid::Uuid::parse_str(id).is_ok())
    {
        let mut tx = db.begin().await?;
        let Some(wrapped) = db::wrapped(&mut tx, id, *version).await? else {
            continue;
        };
        match keyring.adopt(id, *version, &wrapped) {
            Ok(None) => {}
            Ok(Some(fresh)) => {
                if db::replace_wrapped(&mut tx, id, *version, &wrapped, &fresh).await? {
                    tx.commit().await?;
                    adopted += 1;
                    continue;
                }
            }
            Err(_) => shredded += 1,
        }
        tx.rollback().await?;
    }
    if adopted > 0 {
        tracing::info!(keys = adopted, "org keys wrapped with their shred secrets");
    }
    if shredded > 0 {
        tracing::warn!(
            keys = shredded,
            "org keys that do not open: their orgs were deleted after the backup this database came from (their data is gone for good), or the shred vault is not the one they were made with"
        );
    }
    Ok(adopted)
}

/// Seals the own fields of every account not yet so (made before accounts had shred secrets)
/// under its account's secret (made now), at start-up: from then on, erasing the account destroys
/// its email, name and sessions' addresses in old backups too. One account per transaction, each
/// replaced only if unchanged meanwhile. Accounts whose fields do not open (sealed with a secret
/// that is gone: erased after the backup this database came from) are counted and left alone.
/// Returns how many it sealed.
pub async fn adopt_accounts(db: &Db, keyring: &Keyring) -> anyhow::Result<usize> {
    use crate::crypto::sealed_for_account;
    use crate::identity::{email_ad, name_ad};
    if keyring.account_vault().is_none() {
        return Ok(0);
    }
    let mut adopted = 0;
    let mut shredded = 0;
    let mut after = String::new();
    loop {
        let ids = {
            let mut c = db.acquire().await?;
            store::users::unsealed_accounts(&mut c, &after, 500).await?
        };
        let Some(last) = ids.last() else { break };
        after = last.clone();
        for id in ids {
            let mut tx = db.begin().await?;
            let Some(old) = store::users::account_fields(&mut tx, &id).await? else {
                continue;
            };
            let reseal = |ad: &crate::crypto::FieldAd<'_>,
                          ct: &[u8]|
             -> Result<Vec<u8>, crate::crypto::CryptoError> {
                if sealed_for_account(ct) {
                    // Opens (or the account is shredded): nothing to re-seal.
                    keyring.open_field(ad, ct)?;
                    return Ok(ct.to_vec());
                }
                keyring.seal_field(ad, &keyring.open_field(ad, ct)?)
            };
            if !sealed_for_account(&old.email_ct) {
                keyring.new_account_secret(&id)?;
            }
            let new = (|| -> Result<store::users::AccountFields, crate::crypto::CryptoError> {
                let mut sessions = Vec::with_capacity(old.sessions.len());
                for (sid, ip, ua) in &old.sessions {
                    let ip = ip
                        .as_deref()
                        .map(|c| reseal(&crate::identity::sessions::ip_ad(sid, &id), c))
                        .transpose()?;
                    let ua = ua
                        .as_deref()
                        .map(|c| reseal(&crate::identity::sessions::ua_ad(sid, &id), c))
                        .transpose()?;
                    sessions.push((sid.clone(), ip, ua));
                }
                Ok(store::users::AccountFields {
                    email_ct: reseal(&email_ad(&id), &old.email_ct)?,
                    display_name_ct: reseal(&name_ad(&id), &old.display_name_ct)?,
                    sessions,
                })
            })();
            match new {
                Ok(new) => {
                    if store::users::replace_account_fields(&mut tx, &id, &old, &new).await? {
                        tx.commit().await?;
                        adopted += 1;
                        continue;
                    }
                }
                Err(_) => shredded += 1,
            }
            tx.rollback().await?;
        }
    }
    if adopted > 0 {
        tracing::info!(
            accounts = adopted,
            "accounts' fields sealed with their shred secrets"
        );
    }
    if shredded > 0 {
        tracing::warn!(
            accounts = shredded,
            "accounts whose fields do not open: they were erased after the backup this database came from (their personal data is gone for good; they cannot sign in), or the shred vault is not the one they were made with"
        );
    }
    Ok(adopted)
}

pub async fn rotate_master(
    db: &Db,
    keyring: &Keyring,
    now_ms: i64,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<MasterRotation> {
    anyhow::ensure!(
        keyring.rotating_master(),
        "no previous master key is configured: set master_key_file to the new key and previous_master_key_file to the one in use (restart the server with both), then run this again"
    );
    let ids = {
        let mut c = db.acquire().await?;
        db::all_data_keys(&mut c).await?
    };
    progress.set_length(ids.len() as u64);
    let mut rewrapped = 0;
    for (id, version) in &ids {
        // A key changed meanwhile (an org rotation storing its pair) is read again.
        for attempt in 0..5 {
            let mut tx = db.begin().await?;
            let Some(wrapped) = db::wrapped(&mut tx, id, *version).await? else {
                break; // gone meanwhile (an org deleted, a rotation finished)
            };
            let fresh = keyring.rewrap(id, *version, &wrapped).map_err(|_| {
                anyhow::anyhow!(
                    "data key {id} (version {version}) opens under neither the master key nor the previous one"
                )
            })?;
            let Some(fresh) = fresh else {
                break;
            };
            if db::replace_wrapped(&mut tx, id, *version, &wrapped, &fresh).await? {
                tx.commit().await?;
                rewrapped += 1;
                break;
            }
            tx.rollback().await?;
            anyhow::ensure!(attempt < 4, "data key {id} kept changing; run this again");
        }
        progress.inc(1);
    }
    let mut tx = db.begin().await?;
    audit::append_platform(
        &mut tx,
        now_ms,
        Event {
            actor_id: None,
            action: Action::KeysMasterRotated,
            target_type: Some("data_keys"),
            target_id: Some("master"),
            ip: None,
            metadata: json!({ "keys": ids.len(), "rewrapped": rewrapped }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(MasterRotation {
        keys: ids.len() as u64,
        rewrapped,
    })
}

/// How `rotate_org` runs.
#[derive(Debug, Clone)]
pub struct OrgOptions {
    /// Rows per transaction.
    pub batch: i64,
    /// Stop (as a crash would, but cleanly) after this many batches; the next run resumes.
    pub max_batches: Option<u64>,
    /// How long after the rotation began the old key may be dropped (`key_rotation_grace_secs`).
    pub grace: Duration,
}

impl Default for OrgOptions {
    fn default() -> Self {
        OrgOptions {
            batch: 200,
            max_batches: None,
            grace: Duration::from_secs(60),
        }
    }
}

/// What `strongroom keys rotate --org` did.
#[derive(Debug, Serialize)]
pub struct OrgRotation {
    pub org_id: String,
    /// The new key version.
    pub version: u32,
    /// Whether this run started the rotation (false: it resumed one).
    pub started: bool,
    /// Values re-sealed by this run.
    pub resealed: u64,
    /// Items and comments re-indexed for search by this run.
    pub reindexed: u64,
    /// Whether the rotation is complete (the old key dropped); false when stopped by `max_batches`.
    pub finished: bool,
}

const fn col(
    table: &'static str,
    column: &'static str,
    stored: Stored,
    ad_table: &'static str,
    ad_column: &'static str,
) -> SealedColumn {
    SealedColumn {
        table,
        org_column: "org_id",
        column,
        stored,
        ad_table,
        ad_column,
        ad_row_prefix: "",
        per_user: None,
    }
}

/// Every column sealed under an org's data key, grouped by table. Items and comments come first
/// with their search index. A test checks this list against the schema.
pub const SEALED: &[&[SealedColumn]] = &[
    &[
        col("items", "title_ct", Stored::Blob, "items", "title"),
        col(
            "items",
            "description_ct",
            Stored::Blob,
            "items",
            "description",
        ),
        col("items", "labels_ct", Stored::Blob, "items", "labels"),
        col("items", "fields_ct", Stored::Blob, "items", "fields"),
        col("items", "status", Stored::Text, "items", "status"),
    ],
    &[col(
        "item_updates",
        "body_ct",
        Stored::Blob,
        "item_updates",
        "body",
    )],
    &[SealedColumn {
        table: "orgs",
        org_column: "id",
        column: "name_ct",
        stored: Stored::Blob,
        ad_table: "orgs",
        ad_column: "name",
        ad_row_prefix: "",
        per_user: None,
    }],
    &[col(
        "invitations",
        "email_ct",
        Stored::Blob,
        "invitations",
        "email",
    )],
    &[
        col("workspaces", "name_ct", Stored::Blob, "workspaces", "name"),
        col(
            "workspaces",
            "description_ct",
            Stored::Blob,
            "workspaces",
            "description",
        ),
        col(
            "workspaces",
            "statuses",
            Stored::Text,
            "workspaces",
            "statuses",
        ),
    ],
    &[SealedColumn {
        per_user: Some("user_id"),
        ..col(
            "notifications",
            "text_ct",
            Stored::Blob,
            "notifications",
            "text",
        )
    }],
    &[col("folders", "name_ct", Stored::Blob, "folders", "name")],
    &[col(
        "documents",
        "name_ct",
        Stored::Blob,
        "documents",
        "name",
    )],
    &[
        col(
            "document_versions",
            "name_ct",
            Stored::Blob,
            "document_versions",
            "name",
        ),
        SealedColumn {
            table: "document_versions",
            org_column: "org_id",
            column: "key_wrapped",
            stored: Stored::Blob,
            ad_table: "documents",
            ad_column: "content_key",
            ad_row_prefix: "content_key:",
            per_user: None,
        },
    ],
    &[col(
        "share_links",
        "recipient_ct",
        Stored::Blob,
        "share_links",
        "recipient",
    )],
    &[col(
        "link_accesses",
        "recipient_ct",
        Stored::Blob,
        "link_accesses",
        "recipient",
    )],
    &[col(
        "link_codes",
        "email_ct",
        Stored::Blob,
        "link_codes",
        "email",
    )],
    &[
        col("webhooks", "url_ct", Stored::Blob, "webhooks", "url"),
        col("webhooks", "secret_ct", Stored::Blob, "webhooks", "secret"),
        col(
            "webhooks",
            "old_secret_ct",
            Stored::Blob,
            "webhooks",
            "secret",
        ),
    ],
];

const SEALED_TEXT: &str = "sealed:";

/// `value` re-sealed under the current key, if it is still under the previous one. Status texts
/// stored in plaintext (written before they were sealed) are left as they are.
fn reseal(
    key: &TenantKey,
    c: &SealedColumn,
    row: &str,
    value: &Value,
) -> anyhow::Result<Option<Value>> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let ad_row = format!("{}{row}", c.ad_row_prefix);
    let open_err = || {
        anyhow::anyhow!(
            "{}.{} of {row} opens under neither key of the org",
            c.table,
            c.column
        )
    };
    Ok(match value {
        Value::Blob(ct) => key
            .reseal(c.ad_table, c.ad_column, &ad_row, ct)
            .map_err(|_| open_err())?
            .map(Value::Blob),
        Value::Text(text) => {
            let Some(b64) = text.strip_prefix(SEALED_TEXT) else {
                return Ok(None);
            };
            let ct = STANDARD.decode(b64).map_err(|_| open_err())?;
            key.reseal(c.ad_table, c.ad_column, &ad_row, &ct)
                .map_err(|_| open_err())?
                .map(|ct| Value::Text(format!("{SEALED_TEXT}{}", STANDARD.encode(ct))))
        }
    })
}

/// The org's current key, in the transaction: `None` when the org has no key (it is gone).
fn open_key(
    keyring: &Keyring,
    org_id: &str,
    stored: Option<(u32, Vec<u8>)>,
) -> anyhow::Result<Option<TenantKey>> {
    let Some((version, wrapped)) = stored else {
        return Ok(None);
    };
    Ok(Some(keyring.open_tenant_key(
        org_id,
        &WrappedKey { version, wrapped },
    )?))
}

/// The words an item or comment is found by, from its sealed texts (under either key).
fn words(
    key: &TenantKey,
    table: &str,
    id: &str,
    values: &[Option<Value>],
) -> anyhow::Result<Vec<String>> {
    let text = |i: usize, column: &str| -> anyhow::Result<Option<Vec<u8>>> {
        Ok(match values.get(i) {
            Some(Some(Value::Blob(ct))) => Some(key.open(table, column, id, ct)?),
            _ => None,
        })
    };
    let string = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
    Ok(if table == "items" {
        let title = string(text(0, "title")?).unwrap_or_default();
        let description = string(text(1, "description")?).unwrap_or_default();
        let labels: Vec<String> = text(2, "labels")?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        crate::tenancy::search::index_terms(&crate::tenancy::search::item_texts(
            &title,
            &description,
            &labels,
        ))
    } else {
        let body = string(text(0, "body")?).unwrap_or_default();
        crate::tenancy::search::index_terms(&[&body])
    })
}

/// Re-seals (and re-indexes) what is left under the previous key, a batch per transaction.
/// Returns `(resealed, reindexed, batches, stopped)`: `stopped` when `max_batches` ran out or the
/// rotation ended meanwhile.
async fn pass(
    db: &Db,
    keyring: &Keyring,
    org_id: &str,
    opts: &OrgOptions,
    batches_left: &mut Option<u64>,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<(u64, u64, bool)> {
    let (mut resealed, mut reindexed) = (0u64, 0u64);
    for group in SEALED {
        let Some(first) = group.first() else {
            continue;
        };
        let columns: Vec<(&'static str, Stored)> =
            group.iter().map(|c| (c.column, c.stored)).collect();
        let searchable = matches!(first.table, "items" | "item_updates");
        // Rows only their user may change are re-sealed in each user's context in turn.
        let users = match first.per_user {
            None => vec![String::new()],
            Some(column) => {
                let mut t = TenantTx::for_key_rotation(db, org_id, "").await?;
                let users = db::users_with_rows(&mut t, first.table, column).await?;
                t.rollback().await?;
                users
            }
        };
        for user in &users {
            let filter = first.per_user.map(|column| (column, user.as_str()));
            let mut after = String::new();
            loop {
                if *batches_left == Some(0) {
                    return Ok((resealed, reindexed, true));
                }
                let mut t = TenantTx::for_key_rotation(db, org_id, user).await?;
                let stored = store::get_data_key(t.conn()?, org_id).await?;
                let Some(key) = open_key(keyring, org_id, stored)? else {
                    anyhow::bail!("the org {org_id} is gone");
                };
                if !key.rotating() {
                    // Finished meanwhile by another run.
                    t.rollback().await?;
                    return Ok((resealed, reindexed, true));
                }
                let rows = db::batch(
                    &mut t,
                    first.table,
                    first.org_column,
                    &columns,
                    filter,
                    &after,
                    opts.batch,
                )
                .await?;
                let Some(last) = rows.last().map(|(id, _)| id.clone()) else {
                    t.rollback().await?;
                    break;
                };
                let n = rows.len();
                for (id, values) in &rows {
                    let mut changed = false;
                    for (c, value) in group.iter().zip(values) {
                        let Some(value) = value else { continue };
                        if let Some(fresh) = reseal(&key, c, id, value)? {
                            if db::replace(
                                &mut t,
                                c.table,
                                c.org_column,
                                c.column,
                                id,
                                value,
                                &fresh,
                            )
                            .await?
                            {
                                resealed += 1;
                                changed = true;
                            }
                        }
                    }
                    if searchable && changed {
                        // Re-indexed under the new key in the same transaction as the re-sealed
                        // texts (a request that changes a text re-indexes it under the new key too).
                        let words = words(&key, first.ad_table, id, values)?;
                        if let Some((ws, item)) = db::text_place(&mut t, first.table, id).await? {
                            let terms: Vec<String> =
                                words.iter().map(|w| key.search_term(w)).collect();
                            store::work::remove_terms(&mut t, id).await?;
                            store::work::add_terms(&mut t, &ws, &item, id, &terms).await?;
                            reindexed += 1;
                        }
                    }
                }
                t.commit().await?;
                progress.inc(n as u64);
                if let Some(left) = batches_left.as_mut() {
                    *left -= 1;
                }
                after = last;
                if i64::try_from(n).unwrap_or(0) < opts.batch {
                    break;
                }
            }
        }
    }
    Ok((resealed, reindexed, false))
}

/// Rotates org `org_id`'s data key, or resumes its rotation (see the module comment).
pub async fn rotate_org(
    db: &Db,
    keyring: &Keyring,
    clock: &dyn crate::clock::Clock,
    org_id: &str,
    opts: &OrgOptions,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<OrgRotation> {
    anyhow::ensure!(
        uuid::Uuid::parse_str(org_id).is_ok(),
        "{org_id} is not an org id"
    );
    // Begin (or find the rotation under way).
    let mut t = TenantTx::for_key_rotation(db, org_id, "").await?;
    let Some((version, wrapped)) = store::get_data_key(t.conn()?, org_id).await? else {
        anyhow::bail!("no org with id {org_id}");
    };
    let current = WrappedKey { version, wrapped };
    let (version, started) = match keyring.begin_tenant_rotation(org_id, &current)? {
        Some(pair) => {
            let now = clock.now_ms();
            store::insert_data_key(t.conn()?, org_id, pair.version, &pair.wrapped, now).await?;
            audit::append_org(
                &mut t,
                now,
                Event {
                    actor_id: None,
                    action: Action::KeysOrgRotationStarted,
                    target_type: Some("org"),
                    target_id: Some(org_id),
                    ip: None,
                    metadata: json!({ "from_version": current.version, "to_version": pair.version }),
                },
            )
            .await?;
            (pair.version, true)
        }
        None => (current.version, false),
    };
    t.commit().await?;
    let began = {
        let mut t = TenantTx::for_key_rotation(db, org_id, "").await?;
        let at = db::key_created_at(&mut t, version).await?;
        t.rollback().await?;
        at.unwrap_or_else(|| clock.now_ms())
    };

    let total = {
        let mut t = TenantTx::for_key_rotation(db, org_id, "").await?;
        let mut n = 0;
        for group in SEALED {
            if let Some(c) = group.first() {
                n += db::count(&mut t, c.table, c.org_column).await?;
            }
        }
        t.rollback().await?;
        n
    };
    progress.set_length(total);
    let mut out = OrgRotation {
        org_id: org_id.to_string(),
        version,
        started,
        resealed: 0,
        reindexed: 0,
        finished: false,
    };
    let mut batches_left = opts.max_batches;
    let (resealed, reindexed, stopped) =
        pass(db, keyring, org_id, opts, &mut batches_left, progress).await?;
    out.resealed += resealed;
    out.reindexed += reindexed;
    if stopped {
        out.finished = !still_rotating(db, keyring, org_id).await?;
        return Ok(out);
    }
    // A write begun under the old key before the pair was stored may still land: wait until
    // none can be running, then check once more, until a pass finds nothing left.
    // (At most the grace period from now, whatever another machine's clock wrote.)
    let grace = i64::try_from(opts.grace.as_millis()).unwrap_or(i64::MAX / 2);
    let wait = (began.saturating_add(grace) - clock.now_ms()).min(grace);
    if wait > 0 {
        progress.set_message("waiting for writes begun under the old key to end");
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    }
    for _ in 0..5 {
        progress.set_position(0);
        let (resealed, reindexed, stopped) =
            pass(db, keyring, org_id, opts, &mut batches_left, progress).await?;
        out.resealed += resealed;
        out.reindexed += reindexed;
        if stopped {
            out.finished = !still_rotating(db, keyring, org_id).await?;
            return Ok(out);
        }
        if resealed == 0 {
            out.finished = finish(db, keyring, clock, org_id, version, out.resealed).await?;
            return Ok(out);
        }
    }
    anyhow::bail!("values kept appearing under the old key; run this again")
}

async fn still_rotating(db: &Db, keyring: &Keyring, org_id: &str) -> anyhow::Result<bool> {
    let mut t = TenantTx::for_key_rotation(db, org_id, "").await?;
    let stored = store::get_data_key(t.conn()?, org_id).await?;
    t.rollback().await?;
    Ok(open_key(keyring, org_id, stored)?.is_some_and(|k| k.rotating()))
}

/// The end: the pair replaced by the new key alone, the older versions dropped, audited.
async fn finish(
    db: &Db,
    keyring: &Keyring,
    clock: &dyn crate::clock::Clock,
    org_id: &str,
    version: u32,
    resealed: u64,
) -> anyhow::Result<bool> {
    let mut t = TenantTx::for_key_rotation(db, org_id, "").await?;
    let Some(wrapped) = db::wrapped(t.conn()?, org_id, version).await? else {
        anyhow::bail!("the org {org_id} is gone");
    };
    let pair = WrappedKey { version, wrapped };
    let Some(single) = keyring.finish_tenant_rotation(org_id, &pair)? else {
        // Finished by another run.
        t.rollback().await?;
        return Ok(true);
    };
    anyhow::ensure!(
        db::replace_wrapped(t.conn()?, org_id, version, &pair.wrapped, &single.wrapped).await?,
        "the key of {org_id} changed meanwhile; run this again"
    );
    db::drop_versions_below(&mut t, version).await?;
    audit::append_org(
        &mut t,
        clock.now_ms(),
        Event {
            actor_id: None,
            action: Action::KeysOrgRotated,
            target_type: Some("org"),
            target_id: Some(org_id),
            ip: None,
            metadata: json!({ "version": version, "resealed": resealed }),
        },
    )
    .await?;
    t.commit().await?;
    Ok(true)
}
