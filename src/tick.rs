//! How often a VM's root context ticks. The tick picks up keys other VMs
//! fetched, starts due fetches, settles held requests and hands the batched
//! request counters to the host: fast while requests wait or keys are
//! missing, at the counters' pace while counts are pending, else idle.

/// Tick while nothing waits: refreshes are due minutes apart.
pub const IDLE_TICK_MS: u32 = 1000;
/// Tick while requests wait or keys are missing: picks up keys another VM
/// fetched, and deadlines, promptly.
pub const BUSY_TICK_MS: u32 = 50;
/// Tick while request counters wait to be handed over
/// ([`crate::stats::FLUSH_EVERY_MS`]).
pub const FLUSH_TICK_MS: u32 = 100;
/// Tick asked for by a request that needs a fetch started now.
pub const KICK_TICK_MS: u32 = 1;

/// The tick period in force, and the changes to ask the host for. Each
/// method returns `Some(period)` when the period should change.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// The period the host was last told (0: none yet).
    current_ms: u32,
}

impl Pace {
    pub fn current_ms(&self) -> u32 {
        if self.current_ms == 0 {
            IDLE_TICK_MS
        } else {
            self.current_ms
        }
    }

    /// The host took `ms` as the period.
    pub fn set(&mut self, ms: u32) {
        self.current_ms = ms;
    }

    fn change(&self, ms: u32) -> Option<u32> {
        (self.current_ms != ms).then_some(ms)
    }

    /// After configuration: soon when keys must be fetched (warm before
    /// traffic), else idle.
    pub fn at_start(&self, needs_fetch: bool) -> Option<u32> {
        self.change(if needs_fetch {
            BUSY_TICK_MS
        } else {
            IDLE_TICK_MS
        })
    }

    /// A request claimed a fetch (or waits for one): tick now.
    pub fn kick(&self) -> Option<u32> {
        self.change(KICK_TICK_MS)
    }

    /// A request is held: at least the busy pace (a kick stays a kick).
    pub fn on_park(&self) -> Option<u32> {
        self.change(BUSY_TICK_MS.min(self.current_ms()).max(KICK_TICK_MS))
    }

    /// A request left counts pending: hand them over within the flush pace.
    pub fn on_counts_pending(&self) -> Option<u32> {
        (self.current_ms() > FLUSH_TICK_MS).then_some(FLUSH_TICK_MS)
    }

    /// After a tick: busy while requests wait or keys are missing, the
    /// flush pace while counts are pending, else idle.
    pub fn after_tick(&self, busy: bool, counts_pending: bool) -> Option<u32> {
        self.change(if busy {
            BUSY_TICK_MS
        } else if counts_pending {
            FLUSH_TICK_MS
        } else {
            IDLE_TICK_MS
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(p: &mut Pace, change: Option<u32>) {
        if let Some(ms) = change {
            p.set(ms);
        }
    }

    #[test]
    fn the_pace_follows_the_work() {
        let mut p = Pace::default();
        assert_eq!(p.current_ms(), IDLE_TICK_MS);
        assert_eq!(p.at_start(false), Some(IDLE_TICK_MS));
        let c = p.at_start(true);
        apply(&mut p, c);
        assert_eq!(p.current_ms(), BUSY_TICK_MS);
        assert_eq!(p.at_start(true), None, "no change, no hostcall");
        let c = p.kick();
        apply(&mut p, c);
        assert_eq!(p.on_park(), None, "a kick stays a kick");
        let c = p.after_tick(false, true);
        apply(&mut p, c);
        assert_eq!(p.current_ms(), FLUSH_TICK_MS);
        assert_eq!(p.on_counts_pending(), None);
        let c = p.after_tick(false, false);
        apply(&mut p, c);
        assert_eq!(p.current_ms(), IDLE_TICK_MS);
        assert_eq!(p.on_counts_pending(), Some(FLUSH_TICK_MS));
        assert_eq!(p.on_park(), Some(BUSY_TICK_MS));
        let c = p.after_tick(true, true);
        apply(&mut p, c);
        assert_eq!(p.current_ms(), BUSY_TICK_MS, "waiting beats counting");
    }
}
