//! Search within an org without its words at rest. Each item (title, description, labels) and
//! each comment is indexed as keyed hashes (HMAC-SHA256 truncated to 64 bits, under a key derived
//! from the org's data key: `TenantKey::search_term`) of its words; a query's words are hashed the
//! same way and matched by equality. The database holds no word of the text, and a hash from one
//! org means nothing in another. The cost, stated: someone who reads the database sees which
//! texts share a (hashed) word and how often words recur within an org (frequency leakage), though
//! not which words; a query word must be a whole word of the text (no prefixes: indexing every
//! prefix of 3 to 12 characters made an item's creation 40 % slower on SQLite, three times the
//! rows written at random places of the index); there is no ranking by relevance and no fuzzy
//! matching; each text stores one row per distinct word (at most 400). Results are restricted in
//! SQL to the workspaces the caller may see, then each hit is opened with the org key.

use super::OrgRole;
use super::OrgScope;
use crate::error::{AppError, AppResult};
use crate::state::App;
use crate::store::work;

const MAX_TERMS: usize = 400;

/// The words of `text`, lowercased: runs of letters and digits of 2 to 40 characters.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| (2..=40).contains(&w.chars().count()))
        .map(str::to_lowercase)
}

/// What a text is indexed by: its distinct words (at most 400).
pub(crate) fn index_terms(texts: &[&str]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for t in texts {
        for w in words(t) {
            out.insert(w);
            if out.len() >= MAX_TERMS {
                return out.into_iter().collect();
            }
        }
    }
    out.into_iter().collect()
}

/// What a query is looked up by: its distinct words.
fn query_terms(q: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words(q) {
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// The texts an item is found by: its title, description and labels.
pub(crate) fn item_texts<'a>(
    title: &'a str,
    description: &'a str,
    labels: &'a [String],
) -> Vec<&'a str> {
    let mut texts = vec![title, description];
    texts.extend(labels.iter().map(String::as_str));
    texts
}

fn hashed(org: &OrgScope, terms: Vec<String>) -> Vec<String> {
    terms.iter().map(|t| org.key().search_term(t)).collect()
}

/// Indexes a new item or comment (`target_id`) of item `item_id`.
pub(super) async fn index(
    org: &mut OrgScope,
    ws_id: &str,
    item_id: &str,
    target_id: &str,
    texts: &[&str],
) -> AppResult<()> {
    let terms = hashed(org, index_terms(texts));
    work::add_terms(org.tx(), ws_id, item_id, target_id, &terms).await?;
    Ok(())
}

/// Replaces the index of a changed item or comment.
pub(super) async fn reindex(
    org: &mut OrgScope,
    ws_id: &str,
    item_id: &str,
    target_id: &str,
    texts: &[&str],
) -> AppResult<()> {
    work::remove_terms(org.tx(), target_id).await?;
    index(org, ws_id, item_id, target_id, texts).await
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    /// `item` or `comment`.
    pub kind: String,
    pub id: String,
    pub workspace_id: String,
    pub item_id: String,
    /// The item's title.
    pub title: String,
    /// The comment's first 200 characters (empty for an item).
    pub snippet: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
}

/// Items and comments of the org with every word of `q` (see the module documentation), newest
/// first, from the workspaces the caller may see; at most 50.
pub async fn search(app: &App, org: &mut OrgScope, q: &str) -> AppResult<SearchResults> {
    let _ = app;
    if q.chars().count() > 200 {
        return Err(AppError::invalid(
            "invalid_query",
            "q: at most 200 characters.",
        ));
    }
    let terms = query_terms(q);
    if terms.is_empty() {
        return Ok(SearchResults { items: Vec::new() });
    }
    if terms.len() > 10 {
        return Err(AppError::invalid("invalid_query", "q: at most 10 words."));
    }
    let words = terms.len();
    // During a rotation of the org key a text is indexed under the old key or the new one (never
    // both): each word is looked up under both, and a text must still carry every word.
    let hashed: Vec<String> = terms
        .iter()
        .flat_map(|t| org.key().search_term_variants(t))
        .collect();
    let all = org.role() >= OrgRole::Admin;
    let hits = work::search(org.tx(), &hashed, words, all, 50).await?;
    let mut items = Vec::with_capacity(hits.len());
    for (ws_id, item_id, target_id) in hits {
        let Some(item) = work::get_item(org.tx(), &ws_id, &item_id).await? else {
            continue;
        };
        let title = org
            .key()
            .open_string("items", "title", &item.id, &item.title_ct)?;
        let (kind, snippet) = if target_id == item_id {
            ("item", String::new())
        } else {
            let Some(ct) = work::update_body(org.tx(), &target_id).await? else {
                continue;
            };
            let body = org
                .key()
                .open_string("item_updates", "body", &target_id, &ct)?;
            ("comment", body.chars().take(200).collect())
        };
        items.push(SearchHit {
            kind: kind.into(),
            id: target_id,
            workspace_id: ws_id,
            item_id,
            title,
            snippet,
        });
    }
    org.commit().await?;
    Ok(SearchResults { items })
}

/// Indexes what was written before the search index existed (items and comments with no term
/// yet), org by org, in batches of 200 per transaction, through the tenant wall
/// (`TenantTx::for_index_backfill`). Idempotent: run once at start-up, it finds nothing the
/// second time. The number of texts indexed.
pub async fn backfill(
    db: &crate::store::Db,
    keyring: &crate::crypto::Keyring,
) -> anyhow::Result<usize> {
    use crate::store::tenant::{Mode, TenantTx};
    let tenants = {
        let mut c = db.acquire().await?;
        work::keyed_tenants(&mut c).await?
    };
    let mut done = 0;
    for org in tenants.iter().filter(|o| uuid::Uuid::parse_str(o).is_ok()) {
        for comments in [false, true] {
            let mut after = String::new();
            loop {
                // Looked for in a read transaction: an org with nothing to index (every org,
                // after the first start) never takes the writer.
                let mut t = TenantTx::for_index_backfill(db, org, Mode::Read).await?;
                let Some((version, wrapped)) = work::current_key(&mut t).await? else {
                    break;
                };
                let key = match keyring.open_tenant_key(
                    org,
                    &crate::crypto::WrappedKey {
                        version: u32::try_from(version).unwrap_or(0),
                        wrapped,
                    },
                ) {
                    Err(crate::crypto::CryptoError::Shredded) => break,
                    other => other?,
                };
                // (workspace, item, target, words)
                let mut batch: Vec<(String, String, String, Vec<String>)> = Vec::new();
                if comments {
                    for (id, ws, item, body) in work::unindexed_updates(&mut t, &after, 200).await?
                    {
                        let body = key.open_string("item_updates", "body", &id, &body)?;
                        batch.push((ws, item, id, index_terms(&[&body])));
                    }
                } else {
                    for (id, ws, title, desc, labels) in
                        work::unindexed_items(&mut t, &after, 200).await?
                    {
                        let title = key.open_string("items", "title", &id, &title)?;
                        let desc = match desc {
                            Some(ct) => key.open_string("items", "description", &id, &ct)?,
                            None => String::new(),
                        };
                        let labels: Vec<String> = match labels {
                            Some(ct) => {
                                serde_json::from_slice(&key.open("items", "labels", &id, &ct)?)
                                    .unwrap_or_default()
                            }
                            None => Vec::new(),
                        };
                        let words = index_terms(&item_texts(&title, &desc, &labels));
                        batch.push((ws, id.clone(), id, words));
                    }
                }
                t.commit().await?;
                let Some(last) = batch.last().map(|b| b.2.clone()) else {
                    break;
                };
                let n = batch.len();
                let mut w = TenantTx::for_index_backfill(db, org, Mode::Write).await?;
                for (ws, item, target, words) in batch {
                    let terms: Vec<String> = words.iter().map(|t| key.search_term(t)).collect();
                    work::add_terms(&mut w, &ws, &item, &target, &terms).await?;
                }
                w.commit().await?;
                done += n;
                after = last;
                if n < 200 {
                    break;
                }
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::{index_terms, query_terms};

    #[test]
    fn a_query_word_finds_the_same_word_in_any_case() {
        let idx = index_terms(&["Quarterly Revenue report", "Q3"]);
        for q in query_terms("revenue QUARTERLY q3") {
            assert!(idx.contains(&q), "{q} not indexed");
        }
        assert!(!idx.contains(&query_terms("venue")[0]), "not inside a word");
        assert!(
            !idx.contains(&query_terms("quart")[0]),
            "not a prefix either"
        );
        assert!(query_terms("a !").is_empty());
    }
}
