//! Rate limiting behind one interface: an in-process sliding-window log now; a Redis-backed
//! implementation of the same trait lets replicas share counts.
//!
//! Callers reserve an attempt with `hit` *before* doing the work it guards, so that many parallel
//! requests cannot all pass a check made before any of them is counted; `forgive` hands the
//! attempt back when it turns out not to count (a successful login).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::clock::SharedClock;
use crate::config::Limit;

/// How long to wait, in whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Err when `key` already used up `limit`; records nothing.
    async fn check(&self, key: &str, limit: Limit) -> Result<(), RetryAfter>;
    /// Records one hit unless the limit is used up (then Err, nothing recorded).
    async fn hit(&self, key: &str, limit: Limit) -> Result<(), RetryAfter>;
    /// Takes back the most recent hit of `key`.
    async fn forgive(&self, key: &str);
    /// Forgets `key` entirely (e.g. failures after a successful login).
    async fn reset(&self, key: &str);
}

/// Counts one thing of `kind` (an org, an item, a comment...) created by the account `user_id`.
pub async fn creation(
    limiter: &dyn RateLimiter,
    kind: &str,
    user_id: &str,
    limit: Limit,
) -> Result<(), RetryAfter> {
    limiter
        .hit(&format!("create-{kind}:{user_id}"), limit)
        .await
}

/// The part of a client address a limit is keyed on: IPv4 (and IPv4-mapped IPv6) as is, IPv6 by
/// its /64, since one subscriber commonly holds a whole /64.
pub fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

struct Entry {
    hits: VecDeque<i64>,
    window_ms: i64,
}

/// Sliding-window log per key, in memory. Bounded: a key keeps at most `max` timestamps, and keys
/// whose window has passed are swept every few thousand calls.
pub struct MemoryLimiter {
    clock: SharedClock,
    map: Mutex<HashMap<String, Entry>>,
    calls: AtomicU64,
}

const SWEEP_EVERY: u64 = 4096;

impl MemoryLimiter {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            map: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        }
    }

    fn evaluate(&self, key: &str, limit: Limit, record: bool) -> Result<(), RetryAfter> {
        let now = self.clock.now_ms();
        let window = i64::try_from(limit.window_secs)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if self.calls.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            map.retain(|_, e| e.hits.back().is_some_and(|t| *t > now - e.window_ms));
        }
        let e = map.entry(key.to_string()).or_insert_with(|| Entry {
            hits: VecDeque::new(),
            window_ms: window,
        });
        e.window_ms = window;
        while e.hits.front().is_some_and(|t| *t <= now - window) {
            e.hits.pop_front();
        }
        if e.hits.len() >= limit.max as usize {
            let oldest = e.hits.front().copied().unwrap_or(now);
            let wait_ms = (oldest + window - now).max(0);
            return Err(RetryAfter(
                u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
            ));
        }
        if record {
            e.hits.push_back(now);
        }
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn check(&self, key: &str, limit: Limit) -> Result<(), RetryAfter> {
        self.evaluate(key, limit, false)
    }
    async fn hit(&self, key: &str, limit: Limit) -> Result<(), RetryAfter> {
        self.evaluate(key, limit, true)
    }
    async fn forgive(&self, key: &str) {
        if let Some(e) = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(key)
        {
            e.hits.pop_back();
        }
    }
    async fn reset(&self, key: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    #[tokio::test]
    async fn window_slides_and_says_when() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let l = MemoryLimiter::new(clock.clone());
        let lim = Limit::new(2, 60);
        assert!(l.hit("k", lim).await.is_ok());
        clock.advance_secs(10);
        assert!(l.hit("k", lim).await.is_ok());
        assert_eq!(l.hit("k", lim).await, Err(RetryAfter(50)));
        assert_eq!(l.check("k", lim).await, Err(RetryAfter(50)));
        assert!(l.hit("other", lim).await.is_ok());
        l.forgive("k").await;
        assert!(l.hit("k", lim).await.is_ok());
        clock.advance_secs(50);
        assert!(l.hit("k", lim).await.is_ok());
        l.reset("k").await;
        assert!(l.check("k", lim).await.is_ok());
    }

    #[tokio::test]
    async fn expired_keys_are_swept() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let l = MemoryLimiter::new(clock.clone());
        for i in 0..SWEEP_EVERY {
            let _ = l.hit(&format!("k{i}"), Limit::new(1, 1)).await;
        }
        clock.advance_secs(2);
        for i in 0..SWEEP_EVERY {
            let _ = l.check(&format!("fresh{i}"), Limit::new(1, 1)).await;
        }
        let left = l
            .map
            .lock()
            .map(|m| m.keys().filter(|k| k.starts_with('k')).count())
            .unwrap_or(0);
        assert_eq!(left, 0);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_by_its_address() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().expect("ip");
        assert_eq!(ip_key(mapped), "198.51.100.7");
    }
}
