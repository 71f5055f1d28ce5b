//! Waiting for something to become true, with a deadline: the kit's only
//! way to wait. A condition is checked at once and then every few
//! milliseconds, so a wait costs what the event takes, not a guess.

use std::thread;
use std::time::{Duration, Instant};

/// How often a condition is checked again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Checks `f` until it returns `Some` (that value) or `timeout` passes
/// (`None`). `f` runs at least once, and once more at the deadline.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// Checks `f` until it holds; panics naming `what` if it still does not
/// after `timeout`. Returns how long it took.
pub fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    if poll_until(timeout, || f().then_some(())).is_none() {
        panic!("timed out after {timeout:?} waiting for {what}");
    }
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn returns_the_first_value_and_checks_once_more_at_the_deadline() {
        let calls = Cell::new(0);
        let got = poll_until(Duration::from_secs(1), || {
            calls.set(calls.get() + 1);
            (calls.get() == 3).then_some("third")
        });
        assert_eq!(got, Some("third"));
        let calls = Cell::new(0);
        let start = Instant::now();
        let none: Option<()> = poll_until(Duration::from_millis(30), || {
            calls.set(calls.get() + 1);
            None
        });
        assert!(none.is_none() && start.elapsed() >= Duration::from_millis(30));
        assert!(calls.get() >= 2, "checked at the start and at the deadline");
    }

    #[test]
    #[should_panic(expected = "timed out after 20ms waiting for nothing")]
    fn eventually_names_what_it_waited_for() {
        eventually("nothing", Duration::from_millis(20), || false);
    }
}
