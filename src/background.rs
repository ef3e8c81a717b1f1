//! Work that must not shape a response: the answer goes out first, the work follows. Used where the
//! amount of work would otherwise tell an observer whether an account exists. Tracked, so shutdown
//! (and tests) can wait until it is done.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Background {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    running: AtomicUsize,
    done: Notify,
}

impl Background {
    /// Runs `work` after the current request; failures are logged by the caller's future.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.inner.running.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            work.await;
            if inner.running.fetch_sub(1, Ordering::SeqCst) == 1 {
                inner.done.notify_waiters();
            }
        });
    }

    /// Resolves once no background work is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Waits for running work, at most `limit`.
    pub async fn drain(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.idle()).await;
    }
}
