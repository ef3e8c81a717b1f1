//! Organizations, members and invitations. Every function on a tenant table runs in a
//! transaction opened for that tenant (`Db::begin_scoped`) and filters by its org id as well.

use sqlx::Row;

use super::tenant::TenantTx;
use super::Conn;

pub struct OrgRow {
    pub id: String,
    pub name_ct: Vec<u8>,
    pub require_mfa: bool,
    pub created_at: i64,
}

fn org_from(r: &sqlx::any::AnyRow) -> Result<OrgRow, sqlx::Error> {
    Ok(OrgRow {
        id: r.try_get("id")?,
        name_ct: r.try_get("name_ct")?,
        require_mfa: r.try_get::<i64, _>("require_mfa")? != 0,
        created_at: r.try_get("created_at")?,
    })
}

/// Inserts the transaction's org (see `TenantTx::for_new_org`).
pub async fn insert_org(
    t: &mut TenantTx,
    name_ct: Vec<u8>,
    created_by: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (c, id) = t.write()?;
    sqlx::query("INSERT INTO orgs (id, name_ct, require_mfa, created_by, created_at, updated_at) VALUES ($1, $2, 0, $3, $4, $4)")
        .bind(id)
        .bind(name_ct)
        .bind(created_by)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn get_org(t: &mut TenantTx) -> Result<Option<OrgRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query("SELECT id, name_ct, require_mfa, created_at FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_optional(&mut *c)
        .await?
        .as_ref()
        .map(org_from)
        .transpose()
}

pub async fn update_org(
    t: &mut TenantTx,
    name_ct: Option<Vec<u8>>,
    require_mfa: Option<bool>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    if let Some(ct) = name_ct {
        sqlx::query("UPDATE orgs SET name_ct = $2, updated_at = $3 WHERE id = $1")
            .bind(org_id)
            .bind(ct)
            .bind(now)
            .execute(&mut *c)
            .await?;
    }
    if let Some(m) = require_mfa {
        sqlx::query("UPDATE orgs SET require_mfa = $2, updated_at = $3 WHERE id = $1")
            .bind(org_id)
            .bind(i64::from(m))
            .bind(now)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

pub async fn delete_org(t: &mut TenantTx) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query("DELETE FROM orgs WHERE id = $1")
        .bind(org_id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM data_keys WHERE id = $1")
        .bind(org_id)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

/// The user's orgs with the user's role and the org's newest wrapped key (version,
/// ciphertext), ordered by org id, after `after`. Not a tenant read: the transaction carries only
/// the user's context (`Db::begin_for_user`), which shows their own memberships.
pub async fn list_orgs_for_user(
    c: &mut Conn,
    user_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(OrgRow, String, (u32, Vec<u8>))>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT o.id, o.name_ct, o.require_mfa, o.created_at, m.role, k.version, k.wrapped \
         FROM org_members m JOIN orgs o ON o.id = m.org_id \
         JOIN data_keys k ON k.id = o.id AND k.version = (SELECT MAX(k2.version) FROM data_keys k2 WHERE k2.id = o.id) \
         WHERE m.user_id = $1 AND o.id > $2 ORDER BY o.id LIMIT $3",
    )
    .bind(user_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            let version = u32::try_from(r.try_get::<i64, _>("version")?).unwrap_or(0);
            Ok((
                org_from(r)?,
                r.try_get("role")?,
                (version, r.try_get("wrapped")?),
            ))
        })
        .collect()
}

pub async fn insert_member(
    t: &mut TenantTx,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

pub async fn member_role(t: &mut TenantTx, user_id: &str) -> Result<Option<String>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query("SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get("role"))
        .transpose()
}

/// Whether `user_id` can see workspace `ws_id` of this org: an org owner or admin (they see every
/// workspace), or a member holding a role in it.
pub async fn can_see_workspace(
    t: &mut TenantTx,
    user_id: &str,
    ws_id: &str,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let row = sqlx::query(
        "SELECT 1 AS ok FROM org_members m \
         LEFT JOIN workspace_members wm \
                ON wm.org_id = m.org_id AND wm.workspace_id = $3 AND wm.user_id = m.user_id \
         WHERE m.org_id = $1 AND m.user_id = $2 \
           AND (m.role IN ('owner', 'admin') OR wm.user_id IS NOT NULL)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(ws_id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.is_some())
}

pub struct MemberRow {
    pub user_id: String,
    pub role: String,
    pub joined_at: i64,
    pub email_ct: Vec<u8>,
    pub display_name_ct: Vec<u8>,
}

pub async fn list_members(
    t: &mut TenantTx,
    after: &str,
    limit: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = sqlx::query(
        "SELECT m.user_id, m.role, m.created_at, u.email_ct, u.display_name_ct FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3",
    )
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MemberRow {
                user_id: r.try_get("user_id")?,
                role: r.try_get("role")?,
                joined_at: r.try_get("created_at")?,
                email_ct: r.try_get("email_ct")?,
                display_name_ct: r.try_get("display_name_ct")?,
            })
        })
        .collect()
}

pub async fn set_member_role(
    t: &mut TenantTx,
    user_id: &str,
    role: &str,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query("UPDATE org_members SET role = $3 WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_member(t: &mut TenantTx, user_id: &str) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn count_owners(t: &mut TenantTx) -> Result<i64, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query("SELECT COUNT(*) AS n FROM org_members WHERE org_id = $1 AND role = 'owner'")
        .bind(org_id)
        .fetch_one(&mut *c)
        .await?
        .try_get("n")
}

/// Locks the org row for the rest of the transaction, so that concurrent role changes cannot
/// both pass the last-owner check.
pub async fn lock_org(t: &mut TenantTx) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query("UPDATE orgs SET updated_at = updated_at WHERE id = $1")
        .bind(org_id)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub struct NewInvitation<'a> {
    pub id: &'a str,
    pub email_bidx: &'a str,
    pub email_ct: Vec<u8>,
    pub role: &'a str,
    pub invited_by: &'a str,
    pub token_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert_invitation(t: &mut TenantTx, i: NewInvitation<'_>) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO invitations (id, org_id, email_bidx, email_ct, role, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(i.id)
    .bind(org_id)
    .bind(i.email_bidx)
    .bind(i.email_ct)
    .bind(i.role)
    .bind(i.invited_by)
    .bind(i.now)
    .bind(i.expires_at)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO invitation_tokens (token_hash, invitation_id, org_id) VALUES ($1, $2, $3)",
    )
    .bind(i.token_hash)
    .bind(i.id)
    .bind(org_id)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

pub struct InvitationRow {
    pub id: String,
    pub email_bidx: String,
    pub email_ct: Vec<u8>,
    pub role: String,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn invitation_from(r: &sqlx::any::AnyRow) -> Result<InvitationRow, sqlx::Error> {
    Ok(InvitationRow {
        id: r.try_get("id")?,
        email_bidx: r.try_get("email_bidx")?,
        email_ct: r.try_get("email_ct")?,
        role: r.try_get("role")?,
        invited_by: r.try_get("invited_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        accepted_at: r.try_get("accepted_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const INV_COLS: &str =
    "id, email_bidx, email_ct, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

pub async fn list_invitations(
    t: &mut TenantTx,
    after: &str,
    limit: i64,
) -> Result<Vec<InvitationRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = sqlx::query(&format!(
        "SELECT {INV_COLS} FROM invitations WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(invitation_from).collect()
}

pub async fn get_invitation(
    t: &mut TenantTx,
    id: &str,
) -> Result<Option<InvitationRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(&format!(
        "SELECT {INV_COLS} FROM invitations WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .as_ref()
    .map(invitation_from)
    .transpose()
}

pub async fn revoke_invitation(t: &mut TenantTx, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query("UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL")
        .bind(org_id)
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Where an invitation token leads (no tenant context needed: hash → ids only).
pub async fn find_invitation_token(
    c: &mut Conn,
    token_hash: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query("SELECT invitation_id, org_id FROM invitation_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| Ok((r.try_get("invitation_id")?, r.try_get("org_id")?)))
        .transpose()
}

/// Marks a live invitation accepted; false when it was used, revoked or expired meanwhile.
pub async fn accept_invitation(t: &mut TenantTx, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE invitations SET accepted_at = $3 WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(org_id)
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn get_member(t: &mut TenantTx, user_id: &str) -> Result<Option<MemberRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let row = sqlx::query(
        "SELECT m.user_id, m.role, m.created_at, u.email_ct, u.display_name_ct FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|r| {
        Ok(MemberRow {
            user_id: r.try_get("user_id")?,
            role: r.try_get("role")?,
            joined_at: r.try_get("created_at")?,
            email_ct: r.try_get("email_ct")?,
            display_name_ct: r.try_get("display_name_ct")?,
        })
    })
    .transpose()
}

/// Whether the address with this blind index asked this org to stop inviting it.
pub async fn is_opted_out(t: &mut TenantTx, email_bidx: &str) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.read()?;
    Ok(
        sqlx::query("SELECT 1 AS x FROM invitation_optouts WHERE org_id = $1 AND email_bidx = $2")
            .bind(org_id)
            .bind(email_bidx)
            .fetch_optional(&mut *c)
            .await?
            .is_some(),
    )
}

/// Records an opt-out (again is a no-op); true when it is new.
pub async fn insert_optout(
    t: &mut TenantTx,
    email_bidx: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "INSERT INTO invitation_optouts (org_id, email_bidx, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id, email_bidx) DO NOTHING",
    )
    .bind(org_id)
    .bind(email_bidx)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Revokes the pending invitations of this org to this address (after an opt-out).
pub async fn revoke_pending_to(
    t: &mut TenantTx,
    email_bidx: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND email_bidx = $2 \
         AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(email_bidx)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected())
}
