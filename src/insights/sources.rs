//! Which connections an answer was computed from: every token the insights
//! service hands out inside [`recording`] is noted, so that a cached answer
//! or an export can be found again (and erased) by the connections whose
//! data it holds. Task-local: the insights service runs each answer on the
//! caller's task.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;

tokio::task_local! {
    static USED: RefCell<BTreeSet<String>>;
}

/// Runs `work` and answers with its output and the ids of the connections
/// whose tokens it used, sorted.
pub async fn recording<F: Future>(work: F) -> (F::Output, Vec<String>) {
    USED.scope(RefCell::new(BTreeSet::new()), async {
        let output = work.await;
        let used = USED.with(|u| u.borrow().iter().cloned().collect());
        (output, used)
    })
    .await
}

/// Notes that `connection_id`'s token was used; nothing outside a recording.
pub(super) fn note(connection_id: &str) {
    let _ = USED.try_with(|u| u.borrow_mut().insert(connection_id.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_inside_a_recording_only() {
        note("outside");
        let ((), used) = recording(async {
            note("b");
            tokio::task::yield_now().await;
            note("a");
            note("b");
        })
        .await;
        assert_eq!(used, ["a", "b"]);
        let ((), none) = recording(async {}).await;
        assert!(none.is_empty());
    }
}
