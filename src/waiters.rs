//! Requests held until a provider's keys arrive: who waits, until when, and
//! when a held request is due to be decided again. A VM holds a bounded
//! number (a flood during an IdP outage must not grow memory).

use crate::engine::Wait;
use crate::policy::{KeySource, Policy, ProviderId};
use crate::remote_jwks::Progress;
use crate::remote_jwks::records::Millis;

/// Most requests one VM holds while keys are fetched; more are answered
/// 503 at once.
pub const MAX_WAITERS: usize = 4096;

/// How long a request waits for keys of a provider without a remote JWKS
/// (it cannot happen; a bound all the same).
const DEFAULT_WAIT_MS: u64 = 1000;

/// A request paused until keys arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub context_id: u32,
    pub wait: Wait,
    pub since: Millis,
    pub deadline: Millis,
}

/// A held request to decide again; `last_chance`: it will not be held again
/// (its time is up, or the fetch it waited for is over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub context_id: u32,
    pub last_chance: bool,
}

#[derive(Debug, Default)]
pub struct Waiters {
    held: Vec<Waiter>,
}

impl Waiters {
    /// Holds a request until keys arrive, for at most the provider's
    /// `timeout_ms`; a request held again keeps its first deadline. False
    /// when this VM already holds [`MAX_WAITERS`].
    pub fn park(&mut self, policy: &Policy, context_id: u32, wait: Wait, now: Millis) -> bool {
        let timeout = match policy.providers.get(wait.provider).map(|p| &p.keys) {
            Some(KeySource::Remote(spec)) => spec.timeout_ms,
            _ => DEFAULT_WAIT_MS,
        };
        let held = self.held.len();
        match self.held.iter_mut().find(|w| w.context_id == context_id) {
            Some(w) => w.wait = wait,
            None if held >= MAX_WAITERS => return false,
            None => self.held.push(Waiter {
                context_id,
                wait,
                since: now,
                deadline: now.saturating_add(timeout),
            }),
        }
        true
    }

    /// A request's stream ended (answered, or the client went away).
    pub fn forget(&mut self, context_id: u32) {
        self.held.retain(|w| w.context_id != context_id);
    }

    /// Whether the request is held now.
    pub fn holds(&self, context_id: u32) -> bool {
        self.held.iter().any(|w| w.context_id == context_id)
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// The held requests to decide again at `now`: their provider's keys
    /// changed (`changed`) or reached the version awaited, the fetch they
    /// waited for ended (then it is their last chance), or their deadline
    /// passed.
    pub fn due(
        &self,
        now: Millis,
        changed: &[ProviderId],
        progress: impl Fn(ProviderId) -> Progress,
    ) -> Vec<Due> {
        self.held
            .iter()
            .filter_map(|w| {
                let p = progress(w.wait.provider);
                let keys_arrived = changed.contains(&w.wait.provider)
                    || match w.wait.newer_than {
                        None => p.version.is_some(),
                        Some(v) => p.version.is_some_and(|cur| cur > v),
                    };
                let attempt_over = p.last_done >= w.since && !p.fetching;
                let late = now >= w.deadline;
                (keys_arrived || attempt_over || late).then_some(Due {
                    context_id: w.context_id,
                    last_chance: late || attempt_over,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::from_json(
            serde_json::json!({
                "providers": {"idp": {"issuer": "i", "remote_jwks": {
                    "cluster": "c", "uri": "https://h/j", "timeout_ms": 2000}}},
                "rules": [{"match": {}, "requires": {}}]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn wait(newer_than: Option<u64>) -> Wait {
        Wait {
            provider: 0,
            newer_than,
        }
    }

    fn ids(due: &[Due]) -> Vec<(u32, bool)> {
        due.iter().map(|d| (d.context_id, d.last_chance)).collect()
    }

    #[test]
    fn held_requests_are_bounded_and_keep_their_first_deadline() {
        let p = policy();
        let mut w = Waiters::default();
        for id in 0..MAX_WAITERS as u32 {
            assert!(w.park(&p, id, wait(None), 1000));
        }
        assert!(!w.park(&p, 99_999, wait(None), 1000), "one too many");
        // Held again (after a refetch was claimed): same deadline.
        assert!(w.park(&p, 7, wait(Some(3)), 1500));
        let nothing = |_| Progress {
            last_done: 0,
            fetching: true,
            version: None,
        };
        assert!(w.due(2999, &[], nothing).is_empty());
        assert_eq!(
            w.due(3000, &[], nothing).len(),
            MAX_WAITERS,
            "the provider's timeout_ms"
        );
        assert!(w.holds(7) && !w.holds(99_999));
        w.forget(7);
        assert_eq!(w.len(), MAX_WAITERS - 1);
        assert!(!w.holds(7), "forgotten: its body goes on (filter/http.rs)");
    }

    #[test]
    fn held_requests_are_due_when_keys_arrive_or_the_fetch_ends() {
        let p = policy();
        let mut w = Waiters::default();
        w.park(&p, 1, wait(None), 1000);
        w.park(&p, 2, wait(Some(4)), 1000);
        let at = |version, last_done, fetching| {
            move |_| Progress {
                last_done,
                fetching,
                version,
            }
        };
        // A fetch is under way: wait.
        assert!(w.due(1100, &[], at(None, 0, true)).is_empty());
        // Keys arrived, but not the version request 2 waits for.
        assert_eq!(ids(&w.due(1100, &[], at(Some(4), 0, true))), [(1, false)]);
        assert_eq!(
            ids(&w.due(1100, &[], at(Some(5), 0, true))),
            [(1, false), (2, false)]
        );
        // This VM's keys changed: everyone looks again.
        assert_eq!(
            ids(&w.due(1100, &[0], at(Some(4), 0, true))),
            [(1, false), (2, false)]
        );
        // The fetch ended without new keys: a last chance, then 503.
        assert_eq!(
            ids(&w.due(1200, &[], at(Some(4), 1100, false))),
            [(1, true), (2, true)]
        );
        // A fetch that ended before they were held says nothing about them.
        assert_eq!(ids(&w.due(1200, &[], at(None, 900, false))), []);
    }
}
