//! A wake-up for the one task that serves a connection, with `tokio::sync::Notify`'s
//! `notify_one` meaning (a notification given while nobody waits is kept for the next wait),
//! but cheap to wait on from a loop: waiting stores the task's waker in one slot instead of
//! linking a waiter into a list, and giving up a wait costs nothing. Only the connection's own
//! task waits on it, so one slot is enough.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Signal {
    /// A notification not yet taken by a wait.
    permit: AtomicBool,
    /// The waiting task, woken (and forgotten) by the next notification.
    waker: parking_lot::Mutex<Option<Waker>>,
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("permit", &self.permit.load(Relaxed))
            .finish()
    }
}

impl Signal {
    pub fn new() -> Signal {
        Signal::default()
    }

    /// Wakes the waiting task, or leaves a notification for its next wait.
    pub fn notify_one(&self) {
        self.permit.store(true, Release);
        // Taken under the lock after the store: a wait that stored its waker before this
        // lock is woken; one that stores it after sees the permit on its second look.
        let waker = self.waker.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Takes the notification if there is one.
    fn take(&self) -> bool {
        self.permit.load(Relaxed) && self.permit.swap(false, Acquire)
    }

    /// Ready (taking the notification) once notified; otherwise the task is woken by the
    /// next notification.
    pub fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.take() {
            return Poll::Ready(());
        }
        {
            let mut slot = self.waker.lock();
            match slot.as_mut() {
                Some(w) => w.clone_from(cx.waker()),
                None => *slot = Some(cx.waker().clone()),
            }
        }
        if self.take() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Completes once notified. Dropping it before then loses nothing: a notification stays
    /// until a wait takes it.
    pub fn notified(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| self.poll_notified(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_notification_before_the_wait_is_kept() {
        let s = Signal::new();
        s.notify_one();
        s.notify_one();
        let (_, w) = counting();
        let mut cx = Context::from_waker(&w);
        assert!(s.poll_notified(&mut cx).is_ready());
        // One permit, however many notifications.
        assert!(s.poll_notified(&mut cx).is_pending());
    }

    #[test]
    fn a_waiting_task_is_woken_once_and_then_ready() {
        let s = Signal::new();
        let (count, w) = counting();
        let mut cx = Context::from_waker(&w);
        assert!(s.poll_notified(&mut cx).is_pending());
        assert!(s.poll_notified(&mut cx).is_pending());
        s.notify_one();
        assert_eq!(count.0.load(Relaxed), 1);
        assert!(s.poll_notified(&mut cx).is_ready());
        assert!(s.poll_notified(&mut cx).is_pending());
        // The last wait stored its waker again: the next notification wakes it.
        s.notify_one();
        assert_eq!(count.0.load(Relaxed), 2);
    }

    #[test]
    fn a_dropped_wait_loses_nothing() {
        let s = Arc::new(Signal::new());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // A wait abandoned by a select does not take a later notification.
            tokio::select! {
                biased;
                _ = std::future::ready(()) => {}
                _ = s.notified() => unreachable!(),
            }
            let waiter = {
                let s = s.clone();
                tokio::spawn(async move { s.notified().await })
            };
            tokio::task::yield_now().await;
            s.notify_one();
            waiter.await.unwrap();
        });
    }
}
