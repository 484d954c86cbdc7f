//! `TaskTracker`: counts the tasks a transport spawned (listener, one per connection) so that
//! `close()` can wait until every one has ended. Not a scheduler: tasks are plain tokio tasks.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Live task count, and a wakeup when it reaches zero.
#[derive(Debug, Default)]
pub(crate) struct TaskTracker {
    count: AtomicUsize,
    idle: Notify,
}

/// Held by a tracked task's future; dropping it (the task ended, or the runtime dropped it)
/// counts the task out.
#[derive(Debug)]
pub(crate) struct TaskToken(Arc<TaskTracker>);

impl Drop for TaskToken {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl TaskTracker {
    /// Spawns the future `make` builds around a token, on the current runtime. The future
    /// must keep the token until it ends. (Not a wrapping `async` block: that would store the
    /// future twice in the task, and idle connection tasks must stay small.)
    pub(crate) fn spawn<F>(self: &Arc<Self>, make: impl FnOnce(TaskToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.count.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(make(TaskToken(Arc::clone(self))));
    }

    /// Tasks running now.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until no tracked task is running.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.len() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_for_all() {
        let t = Arc::new(TaskTracker::default());
        for i in 0..3u64 {
            t.spawn(|token| async move {
                tokio::time::sleep(Duration::from_millis(10 * i)).await;
                drop(token);
            });
        }
        assert!(t.len() > 0);
        tokio::time::timeout(Duration::from_secs(2), t.wait_idle())
            .await
            .expect("idle in time");
        assert_eq!(t.len(), 0);
    }
}
