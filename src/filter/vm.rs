//! Adapts one VM (one per Envoy worker thread) to the core. The VM holds
//! the policy and the core's per-VM state — remote keys
//! ([`crate::remote_jwks`]), the token cache, held requests
//! ([`crate::waiters`]), the tick pace ([`crate::tick`]), batched counters
//! ([`crate::stats`]) — and carries out with hostcalls what the core
//! decides: header edits, local responses, pauses and resumes, the tick
//! period, fetch log lines and stats.

use std::cell::{Cell, RefCell};

use crate::config_version::Refusals;
use crate::denial::{Denial, HttpResponse};
use crate::engine::{self, Env, Evaluation, Outcome, Wait};
use crate::filter_state;
use crate::plan::{self, Edits, Plan};
use crate::policy::{Policy, ProviderId};
use crate::remote_jwks::records::{FetchFailure, Millis, Purpose};
use crate::remote_jwks::{Context, KeysEvent, RemoteKeys, check_response};
use crate::route_check::{self, Ticket};
use crate::stats::{self, Metric, PluginMetric};
use crate::tick::Pace;
use crate::token_cache::TokenCache;
use crate::trace::NoTrace;
use crate::waiters::Waiters;

use super::abi::{self, Buffer, Level, Map};
use super::host::{HostFetcher, HostStore};
use super::host_verify::HostVerifier;
use super::metrics::Metrics;
use super::request::HostRequest;

/// How a request was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Sent on to the upstream (headers edited).
    Forwarded,
    /// Answered locally.
    Responded,
    /// Paused until keys arrive.
    Waiting,
}

pub struct Vm {
    pub policy: Policy,
    keys: RefCell<RemoteKeys>,
    cache: RefCell<TokenCache>,
    waiters: RefCell<Waiters>,
    pace: RefCell<Pace>,
    pub metrics: Metrics,
    verifier: HostVerifier,
    /// This plugin instance's name (`config.name`).
    plugin: String,
    /// The refusal count last published (`config_refused`).
    refusals_seen: Cell<Option<u64>>,
}

impl Vm {
    pub fn new(policy: Policy, vm_nonce: u64, plugin: String) -> Vm {
        Vm {
            plugin,
            refusals_seen: Cell::new(None),
            keys: RefCell::new(RemoteKeys::new(&policy, vm_nonce)),
            cache: RefCell::new(TokenCache::new(policy.token_cache)),
            waiters: RefCell::new(Waiters::default()),
            pace: RefCell::new(Pace::default()),
            metrics: Metrics::default(),
            verifier: HostVerifier::detect(policy.use_host_crypto),
            policy,
        }
    }

    /// The remote keys' view of this host.
    fn cx(&self) -> Context<'_> {
        Context {
            store: &HostStore,
            verifier: &self.verifier,
            limits: &self.policy.limits,
        }
    }

    /// Prepares shared records, installs keys other VMs already fetched and
    /// readies local keys for the host verifier.
    pub fn start(&self) {
        let mut events = Vec::new();
        if let Ok(mut keys) = self.keys.try_borrow_mut() {
            keys.start(&self.cx(), &mut events);
        }
        for keys in self.policy.configured_key_sets() {
            crate::signature::Verifier::prepare(&self.verifier, keys);
        }
        self.report(events);
    }

    /// Starts the root's tick after configuration.
    pub fn begin_ticking(&self) {
        let needs_fetch = self.keys.try_borrow().is_ok_and(|k| k.any());
        let change = self
            .pace
            .try_borrow()
            .ok()
            .and_then(|p| p.at_start(needs_fetch));
        self.set_tick(change);
    }

    /// Decides the current request (the effective context) and carries the
    /// decision out. `resumed`: the request was paused and is handled from
    /// the root context; `last_chance`: it has waited long enough.
    pub fn process(&self, context_id: u32, resumed: bool, last_chance: bool) -> Disposition {
        let now = abi::now_ms();
        let mut req = HostRequest::read();
        // With route_check, a ticket in filter state means this is the
        // second pass (see crate::route_check).
        let ticket = if self.policy.route_check {
            abi::property(&[route_check::TICKET_PROPERTY])
                .ok()
                .flatten()
                .and_then(|t| Ticket::decode(&t))
        } else {
            None
        };
        if let Some(t) = &ticket
            && t.same_route(req.route())
        {
            return self.forward(&Edits::default(), resumed);
        }
        let with_route = self.policy.uses_route_names;
        let Some(eval) = self.decide(&mut req, with_route, now, last_chance) else {
            // Cannot happen (single-threaded, no re-entry); fail closed.
            return self.respond_unavailable();
        };
        let (eval, plan) = match &ticket {
            Some(t) => {
                self.metrics.count(&self.policy, Metric::RouteRerouted);
                route_check::second_pass(&self.policy, eval, &req.head, t)
            }
            None => {
                let plan = plan::plan(&self.policy, &eval, &req.head);
                (eval, plan)
            }
        };
        self.account(&eval);
        self.publish(&eval);
        self.metrics.flush_if_due(now);
        if self.metrics.has_pending() {
            let change = self
                .pace
                .try_borrow()
                .ok()
                .and_then(|p| p.on_counts_pending());
            self.set_tick(change);
        }
        match plan {
            Plan::Forward(edits) => {
                if self.policy.route_check && ticket.is_none() {
                    let t = Ticket::after(&eval, req.route());
                    if abi::set_property(&[route_check::TICKET_PROPERTY], &t.encode()).is_err() {
                        // Without a ticket the second pass would decide
                        // from scratch, with the filter's own headers in
                        // place: refuse instead.
                        return self.respond(&route_check::rerouted().response(&self.policy.realm));
                    }
                }
                self.forward(&edits, resumed)
            }
            Plan::Respond(resp) => self.respond(&resp),
            Plan::Wait(wait) => {
                if self.park(context_id, wait, now) {
                    Disposition::Waiting
                } else {
                    self.respond_unavailable()
                }
            }
        }
    }

    /// Runs the core's decision with this VM's keys, cache and verifier.
    fn decide(
        &self,
        req: &mut HostRequest,
        with_route: bool,
        now: Millis,
        last_chance: bool,
    ) -> Option<Evaluation> {
        let (Ok(mut keys), Ok(mut cache)) =
            (self.keys.try_borrow_mut(), self.cache.try_borrow_mut())
        else {
            return None;
        };
        let mut view = keys.view(&self.policy, self.cx(), now, last_chance);
        let mut env = Env {
            keys: &mut view,
            verifier: &self.verifier,
            cache: Some(&mut cache),
            now: now / 1000,
        };
        let eval = engine::evaluate(&self.policy, &mut env, &req.view(with_route), &mut NoTrace);
        let (kick, events) = (view.kick, std::mem::take(&mut view.events));
        drop(keys);
        drop(cache);
        if kick {
            let change = self.pace.try_borrow().ok().and_then(|p| p.kick());
            self.set_tick(change);
        }
        self.report(events);
        Some(eval)
    }

    fn forward(&self, edits: &Edits, resumed: bool) -> Disposition {
        for name in &edits.remove {
            let _ = abi::remove_request_header(name);
        }
        for (name, value) in &edits.set {
            let _ = abi::set_request_header(name, value);
        }
        if resumed {
            let _ = abi::resume_request();
        }
        Disposition::Forwarded
    }

    fn respond(&self, resp: &HttpResponse) -> Disposition {
        let headers: Vec<(&str, &[u8])> = resp
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_bytes()))
            .collect();
        if abi::send_response(resp.status, &headers, resp.body.as_bytes()).is_err() {
            abi::log(Level::Warn, "could not send the local response");
        }
        Disposition::Responded
    }

    fn respond_unavailable(&self) -> Disposition {
        self.respond(&Denial::keys_unavailable(1).response(&self.policy.realm))
    }

    fn account(&self, eval: &Evaluation) {
        for metric in stats::request_counts(&self.policy, eval, self.verifier.take_path()) {
            self.metrics.count(&self.policy, metric);
        }
        if matches!(eval.outcome, Outcome::Deny(_)) && abi::log_level() <= Level::Debug {
            abi::log(Level::Debug, &plan::describe(&self.policy, eval));
        }
    }

    /// Publishes how many configurations of this plugin were refused (a
    /// refusing VM leaves the count in shared data: see
    /// [`crate::config_version::Refusals`]).
    pub fn publish_refusals(&self) {
        let count = Refusals::read(&HostStore, &self.plugin).count;
        if self.refusals_seen.get() != Some(count) {
            super::root::plugin_metric(&self.plugin, PluginMetric::ConfigRefused, count);
            self.refusals_seen.set(Some(count));
        }
    }

    /// Filter state for access logs and later filters.
    fn publish(&self, eval: &Evaluation) {
        if !self.policy.publishes_filter_state {
            return;
        }
        for (name, value) in filter_state::entries(&self.policy, eval) {
            if abi::set_property(&[name.as_str()], &value).is_err() {
                abi::log(Level::Warn, &format!("could not set filter state {name}"));
            }
        }
    }

    /// Holds a request until keys arrive; false when this VM holds too many.
    fn park(&self, context_id: u32, wait: Wait, now: Millis) -> bool {
        let parked = self
            .waiters
            .try_borrow_mut()
            .is_ok_and(|mut w| w.park(&self.policy, context_id, wait, now));
        if parked {
            let change = self.pace.try_borrow().ok().and_then(|p| p.on_park());
            self.set_tick(change);
        }
        parked
    }

    /// Whether the request is held until keys arrive (its body and
    /// trailers must be held with it).
    pub fn holds(&self, context_id: u32) -> bool {
        self.waiters
            .try_borrow()
            .map_or(true, |w| w.holds(context_id))
    }

    /// A request's stream ended (answered, or the client went away).
    pub fn forget(&self, context_id: u32) {
        if let Ok(mut waiters) = self.waiters.try_borrow_mut() {
            waiters.forget(context_id);
        }
    }

    fn set_tick(&self, change: Option<u32>) {
        if let Some(ms) = change
            && abi::set_tick_period_ms(ms).is_ok()
            && let Ok(mut pace) = self.pace.try_borrow_mut()
        {
            pace.set(ms);
        }
    }

    /// The root context's tick: keys, due fetches, held requests, counters,
    /// and the next tick.
    pub fn tick(&self) {
        let now = abi::now_ms();
        self.metrics.flush(now);
        self.metrics
            .raise(&self.policy, Metric::VmMemoryBytes, abi::memory_bytes());
        self.publish_refusals();
        let mut events = Vec::new();
        let found = match self.keys.try_borrow_mut() {
            Ok(mut keys) => keys.tick(&self.cx(), &mut HostFetcher, now, &mut events),
            Err(_) => return,
        };
        self.report(events);
        self.settle_waiters(now, &found.changed);
        let busy = found.starving || self.waiters.try_borrow().is_ok_and(|w| !w.is_empty());
        // Requests resumed above were counted after the flush.
        let change = self
            .pace
            .try_borrow()
            .ok()
            .and_then(|p| p.after_tick(busy, self.metrics.has_pending()));
        self.set_tick(change);
    }

    /// A callout this root context made has answered (or failed).
    pub fn on_fetch_response(&self, token: u32, body_size: usize) {
        let now = abi::now_ms();
        let status = abi::header(Map::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
        let check = |limits: &crate::limits::Limits| {
            check_response(
                status,
                body_size,
                || abi::buffer(Buffer::HttpCallResponseBody, body_size).ok(),
                limits,
            )
        };
        let mut events = Vec::new();
        let done = match self.keys.try_borrow_mut() {
            Ok(mut keys) => keys.on_response(&self.cx(), token, check, now, &mut events),
            Err(_) => None,
        };
        self.report(events);
        if let Some(pid) = done {
            self.settle_waiters(now, &[pid]);
        }
    }

    /// Decides again the held requests that are due.
    fn settle_waiters(&self, now: Millis, changed: &[ProviderId]) {
        let due = {
            let (Ok(waiters), Ok(keys)) = (self.waiters.try_borrow(), self.keys.try_borrow())
            else {
                return;
            };
            waiters.due(now, changed, |pid| keys.progress(&HostStore, pid, now))
        };
        for d in due {
            if abi::set_effective_context(d.context_id).is_err() {
                // The client went away; nothing to answer.
                self.forget(d.context_id);
                continue;
            }
            if self.process(d.context_id, true, d.last_chance) != Disposition::Waiting {
                self.forget(d.context_id);
            }
        }
    }

    fn provider_name(&self, pid: ProviderId) -> &str {
        self.policy
            .providers
            .get(pid)
            .map_or("?", |p| p.name.as_str())
    }

    fn provider_uri(&self, pid: ProviderId) -> String {
        self.keys
            .try_borrow()
            .ok()
            .and_then(|k| k.provider(pid).map(|p| p.spec.uri.clone()))
            .unwrap_or_default()
    }

    /// What happened to the keys: stats, log lines, the cache.
    fn report(&self, events: Vec<KeysEvent>) {
        let (p, m) = (&self.policy, &self.metrics);
        for event in events {
            match event {
                KeysEvent::Installed {
                    provider,
                    keys,
                    version,
                } => {
                    m.set(
                        p,
                        Metric::KeysInUse(provider),
                        u64::try_from(keys).unwrap_or(0),
                    );
                    m.set(p, Metric::KeysVersion(provider), version);
                    if let Ok(mut cache) = self.cache.try_borrow_mut() {
                        cache.retain_version(provider, version);
                    }
                }
                KeysEvent::FetchStarted { provider, purpose } => {
                    m.inc(p, Metric::FetchStarted(provider));
                    if purpose == Purpose::UnknownKid {
                        m.inc(p, Metric::UnknownKidRefetch(provider));
                    }
                    if abi::log_level() <= Level::Debug {
                        let spec = self.keys.try_borrow().ok().and_then(|k| {
                            k.provider(provider)
                                .map(|x| (x.spec.uri.clone(), x.spec.cluster.clone()))
                        });
                        let (uri, cluster) = spec.unwrap_or_default();
                        abi::log(
                            Level::Debug,
                            &format!(
                                "fetching JWKS for provider {} from {uri} via cluster {cluster} ({purpose:?})",
                                self.provider_name(provider)
                            ),
                        );
                    }
                }
                KeysEvent::FetchFailed {
                    provider,
                    failure,
                    keeping,
                } => {
                    let name = self.provider_name(provider);
                    let not_started = matches!(failure, FetchFailure::NotStarted(_));
                    if not_started {
                        m.inc(p, Metric::FetchStarted(provider));
                    }
                    m.inc(p, Metric::FetchFailed(provider));
                    m.inc(p, Metric::FetchFailedFor(provider, failure.kind()));
                    if not_started {
                        abi::log(
                            Level::Error,
                            &format!("JWKS fetch for provider {name} failed: {failure}"),
                        );
                    } else {
                        let keeping = if keeping {
                            "; keeping the previous keys"
                        } else {
                            ""
                        };
                        abi::log(
                            Level::Warn,
                            &format!(
                                "JWKS fetch for provider {name} from {} failed: {failure}{keeping}",
                                self.provider_uri(provider)
                            ),
                        );
                    }
                }
                KeysEvent::Fetched { provider, fetched } => {
                    m.inc(p, Metric::FetchSucceeded(provider));
                    abi::log(
                        Level::Info,
                        &format!(
                            "JWKS for provider {} fetched from {}: {} keys, version {}{}",
                            self.provider_name(provider),
                            self.provider_uri(provider),
                            fetched.keys,
                            fetched.version,
                            if fetched.changed { "" } else { " (unchanged)" }
                        ),
                    );
                }
            }
        }
    }
}
