//! A cooperative budget: how much work a task may do before it lets others run.
//!
//! Our executor, like async-executor underneath it, never takes a thread back from a task: a
//! task that keeps finding work ready (a broker whose inbox is never empty, a reader whose
//! socket always has data) would keep its thread for as long as the work lasts, and on a
//! one-thread node that is everyone's thread. Tokio guards against this with a per-task budget
//! that its own resources enforce; we make the loops that can run long count their work with a
//! [`Budget`] and yield when it is spent. Plain Rust, no runtime: the broker (runtime-agnostic)
//! and the connection future use the same type.

use std::task::{Context, Poll};

/// Units of work left before the task should yield.
///
/// ```
/// use chatnode::budget::Budget;
/// let mut budget = Budget::new(2);
/// assert!(budget.spend());
/// assert!(budget.spend());
/// assert!(!budget.spend()); // spent: time to yield
/// budget.refill();
/// assert!(budget.spend());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    left: u32,
    full: u32,
}

impl Budget {
    /// A budget of `units` (at least 1).
    pub const fn new(units: u32) -> Budget {
        let units = if units == 0 { 1 } else { units };
        Budget {
            left: units,
            full: units,
        }
    }

    /// Spends one unit: `true` if the work may go ahead, `false` once the budget is spent (the
    /// caller should yield, then [`Budget::refill`]).
    pub fn spend(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }

    /// Back to full, after yielding.
    pub fn refill(&mut self) {
        self.left = self.full;
    }

    /// For async loops: spends one unit; when the budget is spent, yields to the executor once
    /// and refills.
    ///
    /// ```
    /// use chatnode::budget::Budget;
    /// futures_lite::future::block_on(async {
    ///     let mut budget = Budget::new(64);
    ///     for _ in 0..1000 {
    ///         budget.tick().await; // yields every 64 iterations
    ///     }
    /// });
    /// ```
    pub async fn tick(&mut self) {
        if !self.spend() {
            futures_lite::future::yield_now().await;
            self.refill();
            self.left -= 1;
        }
    }

    /// For hand-written futures: `Ready` while budget is left (one unit spent); when it is
    /// spent, schedules the task to run again, refills, and returns `Pending`: the caller
    /// returns `Pending` too, giving the thread to the tasks queued behind it.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.spend() {
            Poll::Ready(())
        } else {
            self.refill();
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
