//! Rate limiting behind one interface: an in-process sliding-window log now; a Redis-backed
//! implementation of the same trait lets replicas share counts.

use std::collections::{HashMap, VecDeque};
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
    /// Forgets `key` (e.g. failures after a successful login).
    async fn reset(&self, key: &str);
}

/// Sliding-window log per key, in memory. Bounded: each key keeps at most `max` timestamps, and
/// keys whose window has passed are swept when the map grows.
pub struct MemoryLimiter {
    clock: SharedClock,
    map: Mutex<HashMap<String, VecDeque<i64>>>,
}

const SWEEP_AT: usize = 100_000;

impl MemoryLimiter {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn evaluate(&self, key: &str, limit: Limit, record: bool) -> Result<(), RetryAfter> {
        let now = self.clock.now_ms();
        let window = i64::try_from(limit.window_secs).unwrap_or(i64::MAX / 2) * 1000;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_AT {
            map.retain(|_, q| q.back().is_some_and(|t| *t > now - 86_400_000));
        }
        let q = map.entry(key.to_string()).or_default();
        while q.front().is_some_and(|t| *t <= now - window) {
            q.pop_front();
        }
        if q.len() >= limit.max as usize {
            let oldest = q.front().copied().unwrap_or(now);
            let wait_ms = (oldest + window - now).max(0);
            return Err(RetryAfter(
                u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
            ));
        }
        if record {
            q.push_back(now);
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
        clock.advance_secs(50);
        assert!(l.hit("k", lim).await.is_ok());
        l.reset("k").await;
        assert!(l.check("k", lim).await.is_ok());
    }
}
