//! Recomputing a chain, one event at a time (constant memory: from the database in batches or from
//! an export file line by line).
//!
//! An event is good when its `seq` is the one expected, its `prev_hash` is the hash of the event
//! before it and its own hash recomputes. A chain starts at seq 1 after the all-zero genesis hash,
//! or, after retention removed a prefix, at the event following a checkpoint: the chain then has to
//! hold a signed `audit.retention_checkpoint` event naming exactly that prefix (its last seq and
//! hash). So an edited, deleted, reordered or inserted event, or a prefix removed by anything but
//! retention, names the first sequence number that fails.

use serde::Serialize;

use super::{retention, Action, StoredEvent, GENESIS};
use crate::crypto::Keyring;

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub valid: bool,
    /// Events read.
    pub events: u64,
    /// The first sequence number that does not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    /// The first sequence number present (above 1 after retention).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<i64>,
    /// The last sequence number present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<i64>,
    /// The hash of the last event read: compare it with the chain head the API reports to see
    /// that an export file is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_hash: Option<String>,
    /// Whether retention checkpoints had their signatures checked (needs the master key).
    pub checkpoint_signatures_checked: bool,
}

/// Feeds events in chain order; `finish` gives the report.
pub struct Verifier<'k> {
    chain: String,
    keyring: Option<&'k Keyring>,
    expect_seq: Option<i64>,
    prev: String,
    /// After retention: the removed prefix `(through_seq, through_hash)` a checkpoint must name.
    anchor: Option<(i64, String)>,
    anchored: bool,
    first_seq: Option<i64>,
    events: u64,
    bad: Option<i64>,
}

impl<'k> Verifier<'k> {
    /// A verifier for `chain`; with a keyring, checkpoint signatures are checked too.
    pub fn new(chain: &str, keyring: Option<&'k Keyring>) -> Self {
        Self {
            chain: chain.to_string(),
            keyring,
            expect_seq: None,
            prev: GENESIS.to_string(),
            anchor: None,
            anchored: false,
            first_seq: None,
            events: 0,
            bad: None,
        }
    }

    /// The next event in the order it was read.
    pub fn feed(&mut self, e: &StoredEvent) {
        self.events += 1;
        if self.bad.is_some() {
            return;
        }
        let expect = match self.expect_seq {
            Some(s) => s,
            None => {
                // The first event read: the chain's start, or the end of a removed prefix.
                self.first_seq = Some(e.seq);
                if e.seq > 1 {
                    self.anchor = Some((e.seq - 1, e.prev_hash.clone()));
                    self.prev = e.prev_hash.clone();
                } else {
                    self.anchored = true;
                }
                e.seq.max(1)
            }
        };
        if e.seq != expect || e.chain != self.chain || e.prev_hash != self.prev {
            self.bad = Some(expect.min(e.seq.max(1)));
            return;
        }
        if e.compute_hash() != e.hash {
            self.bad = Some(e.seq);
            return;
        }
        if !self.anchored && e.action == Action::AuditRetentionCheckpoint.as_str() {
            if let Some((through_seq, through_hash)) = &self.anchor {
                if retention::checkpoint_names(
                    &self.chain,
                    &e.metadata,
                    *through_seq,
                    through_hash,
                    self.keyring,
                ) {
                    self.anchored = true;
                }
            }
        }
        self.prev = e.hash.clone();
        self.expect_seq = Some(e.seq + 1);
    }

    /// A line that is not an event where the next event should be (an export file).
    pub fn unreadable(&mut self) {
        self.events += 1;
        if self.bad.is_none() {
            self.bad = Some(self.expect_seq.unwrap_or(1));
        }
    }

    /// The report; `head` is the chain head the database records, if the events came from it
    /// (a missing tail then shows).
    pub fn finish(self, head: Option<(i64, String)>) -> Report {
        let last_seq = self.expect_seq.map(|s| s - 1);
        let mut bad = self.bad;
        if bad.is_none() && !self.anchored {
            // A prefix is missing and no signed checkpoint accounts for it.
            bad = self.first_seq;
        }
        if bad.is_none() {
            if let Some((head_seq, head_hash)) = head {
                let seen = last_seq.unwrap_or(0);
                if head_seq > seen {
                    bad = Some(seen + 1);
                } else if head_seq < seen {
                    bad = Some(head_seq + 1);
                } else if head_seq > 0 && head_hash != self.prev {
                    bad = Some(head_seq);
                }
            }
        }
        Report {
            valid: bad.is_none(),
            events: self.events,
            first_bad_seq: bad,
            first_seq: self.first_seq,
            last_hash: last_seq.map(|_| self.prev.clone()),
            last_seq,
            checkpoint_signatures_checked: self.keyring.is_some(),
        }
    }
}
