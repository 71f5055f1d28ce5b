//! The state of one VM (one per Envoy worker thread) and the steps that use
//! it: decide a request and carry the decision out, park requests that wait
//! for keys, and drive remote JWKS fetches from the root context's tick.

use std::cell::RefCell;

use crate::config::Mode;
use crate::denial::{Denial, HttpResponse};
use crate::engine::{self, CacheUse, Env, Evaluation, KeyStatus, KeyStore, Outcome, Wait};
use crate::jwks_cache::Millis;
use crate::plan::{self, Edits, Plan};
use crate::policy::{KeySource, Policy, ProviderId};
use crate::route_check::{self, Ticket};
use crate::token_cache::TokenCache;
use crate::trace::NoTrace;

use super::abi::{self, Level};
use super::host_verify::{HostVerifier, Path};
use super::metrics::{Metric, Metrics};
use super::remote::Remote;
use super::request::HostRequest;

/// Tick while nothing waits: refreshes are due minutes apart.
const IDLE_TICK_MS: u32 = 1000;
/// Tick while requests wait or keys are missing: picks up keys another VM
/// fetched, and deadlines, promptly.
const BUSY_TICK_MS: u32 = 50;
/// Tick while request counters wait to be flushed (see `metrics`).
const FLUSH_TICK_MS: u32 = 100;
/// Tick asked for from a request that needs a fetch started now.
const KICK_TICK_MS: u32 = 1;
/// Most requests one VM holds while keys are fetched; more are answered
/// 503 at once (a flood during an IdP outage must not grow memory).
const MAX_WAITERS: usize = 4096;

/// A request paused until keys arrive.
pub struct Waiter {
    pub context_id: u32,
    pub wait: Wait,
    pub since: Millis,
    pub deadline: Millis,
}

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
    remotes: RefCell<Vec<Option<Remote>>>,
    cache: RefCell<TokenCache>,
    waiters: RefCell<Vec<Waiter>>,
    pub metrics: Metrics,
    verifier: HostVerifier,
    tick_ms: RefCell<u32>,
}

impl Vm {
    pub fn new(policy: Policy, vm_nonce: u64) -> Vm {
        let remotes = policy
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| match &p.keys {
                KeySource::Remote(spec) => {
                    let me = vm_nonce ^ (u64::try_from(i).unwrap_or(0) << 56);
                    Some(Remote::new(&p.name, spec.clone(), me.max(1)))
                }
                _ => None,
            })
            .collect();
        let cache = TokenCache::new(policy.token_cache);
        Vm {
            verifier: HostVerifier::detect(policy.use_host_crypto),
            policy,
            remotes: RefCell::new(remotes),
            cache: RefCell::new(cache),
            waiters: RefCell::new(Vec::new()),
            metrics: Metrics::default(),
            tick_ms: RefCell::new(0),
        }
    }

    /// Prepares shared records, installs keys other VMs already fetched and
    /// checks local keys with the host verifier.
    pub fn start(&self) {
        if let Ok(mut remotes) = self.remotes.try_borrow_mut() {
            for (pid, remote) in remotes.iter_mut().enumerate() {
                if let Some(remote) = remote {
                    remote.ensure_state_record();
                    if remote.sync(&self.policy.limits) {
                        self.installed(pid, remote);
                    }
                }
            }
        }
        for p in &self.policy.providers {
            if let KeySource::Local(keys) = &p.keys {
                self.verifier.prepare(keys);
            }
        }
    }

    /// A provider's remote keys changed in this VM: probe them for the host
    /// verifier, publish the gauges and drop cache entries of older keys.
    fn installed(&self, pid: ProviderId, remote: &Remote) {
        if let Some(i) = &remote.installed {
            self.verifier.prepare(&i.keys);
            self.publish_keys(pid, i.keys.len(), i.meta.version);
        }
    }

    fn publish_keys(&self, pid: ProviderId, keys: usize, version: u64) {
        self.metrics.set(
            &self.policy,
            Metric::KeysInUse(pid),
            u64::try_from(keys).unwrap_or(0),
        );
        self.metrics
            .set(&self.policy, Metric::KeysVersion(pid), version);
        if let Ok(mut cache) = self.cache.try_borrow_mut() {
            cache.retain_version(pid, version);
        }
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
        self.metrics.flush_if_due(now);
        if self.metrics.has_pending() && self.current_tick() > FLUSH_TICK_MS {
            self.set_tick(FLUSH_TICK_MS);
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
        let (Ok(mut remotes), Ok(mut cache)) =
            (self.remotes.try_borrow_mut(), self.cache.try_borrow_mut())
        else {
            return None;
        };
        let mut keys = VmKeys {
            policy: &self.policy,
            remotes: &mut remotes,
            verifier: &self.verifier,
            now,
            last_chance,
            kick: false,
            installed: Vec::new(),
        };
        let mut env = Env {
            keys: &mut keys,
            verifier: &self.verifier,
            cache: Some(&mut cache),
            now: now / 1000,
        };
        let eval = engine::evaluate(&self.policy, &mut env, &req.view(with_route), &mut NoTrace);
        let (kick, installed) = (keys.kick, keys.installed);
        drop(remotes);
        drop(cache);
        if kick {
            self.kick();
        }
        for (pid, keys, version) in installed {
            self.publish_keys(pid, keys, version);
        }
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
        let m = &self.metrics;
        let p = &self.policy;
        match eval.cache {
            CacheUse::Hit => m.count(p, Metric::CacheHit),
            CacheUse::Miss => m.count(p, Metric::CacheMiss),
            CacheUse::NotUsed => {}
        }
        match self.verifier.take_path() {
            Some(Path::Host) => m.count(p, Metric::VerifyHost),
            Some(Path::Pure) => m.count(p, Metric::VerifyPure),
            None => {}
        }
        let report = p.mode_for(eval.rule) == Mode::Report;
        match &eval.outcome {
            Outcome::Wait(_) => return,
            Outcome::Allow(_) => {
                m.count(p, Metric::Allowed);
                if let Some(r) = eval.rule {
                    m.count(p, Metric::RuleAllowed(r));
                }
            }
            Outcome::Deny(d) if report => {
                m.count(p, Metric::WouldDeny(d.reason));
                if let Some(r) = eval.rule {
                    m.count(p, Metric::RuleWouldDeny(r, d.reason));
                }
            }
            Outcome::Deny(d) => {
                m.count(p, Metric::Denied(d.reason));
                if let Some(r) = eval.rule {
                    m.count(p, Metric::RuleDenied(r, d.reason));
                }
            }
        }
        if matches!(eval.outcome, Outcome::Deny(_)) && abi::log_level() <= Level::Debug {
            abi::log(Level::Debug, &plan::describe(p, eval));
        }
    }

    /// Holds a request until keys arrive; a request held again keeps its
    /// first deadline. False when this VM already holds too many.
    fn park(&self, context_id: u32, wait: Wait, now: Millis) -> bool {
        let timeout = match self.policy.providers.get(wait.provider).map(|p| &p.keys) {
            Some(KeySource::Remote(spec)) => spec.timeout_ms,
            _ => 1000,
        };
        let Ok(mut waiters) = self.waiters.try_borrow_mut() else {
            return false;
        };
        let held = waiters.len();
        match waiters.iter_mut().find(|w| w.context_id == context_id) {
            Some(w) => w.wait = wait,
            None if held >= MAX_WAITERS => return false,
            None => waiters.push(Waiter {
                context_id,
                wait,
                since: now,
                deadline: now.saturating_add(timeout),
            }),
        }
        drop(waiters);
        self.set_tick(BUSY_TICK_MS.min(self.current_tick()).max(KICK_TICK_MS));
        true
    }

    fn current_tick(&self) -> u32 {
        self.tick_ms.try_borrow().map_or(IDLE_TICK_MS, |t| *t)
    }

    /// Starts the root's tick after configuration: soon when keys must be
    /// fetched (warm before traffic), else at the idle pace.
    pub fn begin_ticking(&self) {
        let needs_fetch = self
            .remotes
            .try_borrow()
            .map(|r| r.iter().any(Option::is_some))
            .unwrap_or(false);
        self.set_tick(if needs_fetch {
            BUSY_TICK_MS
        } else {
            IDLE_TICK_MS
        });
    }

    /// A request's stream ended (answered, or the client went away).
    pub fn forget(&self, context_id: u32) {
        if let Ok(mut waiters) = self.waiters.try_borrow_mut() {
            waiters.retain(|w| w.context_id != context_id);
        }
    }

    /// Asks for a root tick right away (a fetch was claimed on a request).
    fn kick(&self) {
        self.set_tick(KICK_TICK_MS);
    }

    fn set_tick(&self, ms: u32) {
        if let Ok(mut current) = self.tick_ms.try_borrow_mut()
            && *current != ms
            && abi::set_tick_period_ms(ms).is_ok()
        {
            *current = ms;
        }
    }

    /// The root context's tick: sync keys, start due fetches, settle
    /// waiting requests, and choose the next tick.
    pub fn tick(&self) {
        let now = abi::now_ms();
        self.metrics.flush(now);
        self.metrics
            .raise(&self.policy, Metric::VmMemoryBytes, abi::memory_bytes());
        let mut changed: Vec<ProviderId> = Vec::new();
        let mut starving = false;
        if let Ok(mut remotes) = self.remotes.try_borrow_mut() {
            for (pid, slot) in remotes.iter_mut().enumerate() {
                let Some(remote) = slot else { continue };
                if remote.sync(&self.policy.limits) {
                    self.installed(pid, remote);
                    changed.push(pid);
                }
                if !remote.busy() {
                    remote.schedule(now);
                }
                if remote.has_pending() {
                    self.start_fetch(pid, remote, now);
                }
                starving |= !matches!(remote.status(now, false), KeyStatus::Ready { .. });
            }
        }
        self.settle_waiters(now, &changed);
        let busy = starving
            || self
                .waiters
                .try_borrow()
                .map(|w| !w.is_empty())
                .unwrap_or(false);
        self.set_tick(if busy {
            BUSY_TICK_MS
        } else if self.metrics.has_pending() {
            // Requests resumed above were counted after the flush.
            FLUSH_TICK_MS
        } else {
            IDLE_TICK_MS
        });
    }

    fn start_fetch(&self, pid: ProviderId, remote: &mut Remote, now: Millis) {
        match remote.dispatch(now) {
            Ok(Some(purpose)) => {
                self.metrics.inc(&self.policy, Metric::FetchStarted(pid));
                if purpose == crate::jwks_cache::Purpose::UnknownKid {
                    self.metrics
                        .inc(&self.policy, Metric::UnknownKidRefetch(pid));
                }
                abi::log(
                    Level::Debug,
                    &format!(
                        "fetching JWKS for provider {} from {} via cluster {} ({:?})",
                        self.provider_name(pid),
                        remote.spec.uri,
                        remote.spec.cluster,
                        purpose
                    ),
                );
            }
            Ok(None) => {}
            Err(e) => {
                self.metrics.inc(&self.policy, Metric::FetchStarted(pid));
                self.metrics.inc(&self.policy, Metric::FetchFailed(pid));
                self.metrics
                    .inc(&self.policy, Metric::FetchFailedFor(pid, e.kind()));
                abi::log(
                    Level::Error,
                    &format!(
                        "JWKS fetch for provider {} failed: {e}",
                        self.provider_name(pid)
                    ),
                );
            }
        }
    }

    fn provider_name(&self, pid: ProviderId) -> &str {
        self.policy
            .providers
            .get(pid)
            .map_or("?", |p| p.name.as_str())
    }

    /// A callout this root context made has answered (or failed).
    pub fn on_fetch_response(&self, token: u32, body_size: usize) {
        let now = abi::now_ms();
        let mut done = None;
        if let Ok(mut remotes) = self.remotes.try_borrow_mut() {
            for (pid, slot) in remotes.iter_mut().enumerate() {
                let Some(remote) = slot else { continue };
                if !remote.owns(token) {
                    continue;
                }
                let name = self.provider_name(pid);
                match remote.complete(body_size, &self.policy.limits, now) {
                    Ok(f) => {
                        self.metrics.inc(&self.policy, Metric::FetchSucceeded(pid));
                        if f.changed {
                            self.installed(pid, remote);
                        }
                        abi::log(
                            Level::Info,
                            &format!(
                                "JWKS for provider {name} fetched from {}: {} keys, version {}{}",
                                remote.spec.uri,
                                f.keys,
                                f.version,
                                if f.changed { "" } else { " (unchanged)" }
                            ),
                        );
                    }
                    Err(e) => {
                        self.metrics.inc(&self.policy, Metric::FetchFailed(pid));
                        self.metrics
                            .inc(&self.policy, Metric::FetchFailedFor(pid, e.kind()));
                        let keeping = if remote.installed.is_some() {
                            "; keeping the previous keys"
                        } else {
                            ""
                        };
                        abi::log(
                            Level::Warn,
                            &format!(
                                "JWKS fetch for provider {name} from {} failed: {e}{keeping}",
                                remote.spec.uri
                            ),
                        );
                    }
                }
                done = Some(pid);
            }
        }
        if let Some(pid) = done {
            self.settle_waiters(now, &[pid]);
        }
    }

    /// Re-decides waiting requests whose keys arrived, whose fetch ended,
    /// or whose time is up.
    fn settle_waiters(&self, now: Millis, changed: &[ProviderId]) {
        let due: Vec<(u32, bool)> = {
            let Ok(waiters) = self.waiters.try_borrow() else {
                return;
            };
            let Ok(remotes) = self.remotes.try_borrow() else {
                return;
            };
            waiters
                .iter()
                .filter_map(|w| {
                    let remote = remotes.get(w.wait.provider).and_then(Option::as_ref);
                    let (last_done, fetching) = remote.map_or((0, false), |r| r.progress(now));
                    let version = remote
                        .and_then(|r| r.installed.as_ref())
                        .map(|i| i.meta.version);
                    let keys_arrived = changed.contains(&w.wait.provider)
                        || match w.wait.newer_than {
                            None => version.is_some(),
                            Some(v) => version.is_some_and(|cur| cur > v),
                        };
                    let attempt_over = last_done >= w.since && !fetching;
                    let late = now >= w.deadline;
                    (keys_arrived || attempt_over || late)
                        .then_some((w.context_id, late || attempt_over))
                })
                .collect()
        };
        for (context_id, last_chance) in due {
            if abi::set_effective_context(context_id).is_err() {
                // The client went away; nothing to answer.
                self.forget(context_id);
                continue;
            }
            if self.process(context_id, true, last_chance) != Disposition::Waiting {
                self.forget(context_id);
            }
        }
    }
}

/// The [`KeyStore`] a request sees: local keys from the policy, remote ones
/// from this VM's view of the shared cache.
struct VmKeys<'v> {
    policy: &'v Policy,
    remotes: &'v mut Vec<Option<Remote>>,
    verifier: &'v HostVerifier,
    now: Millis,
    last_chance: bool,
    /// A fetch was claimed: the root must tick now to start it.
    kick: bool,
    /// Key sets installed during this request: (provider, keys, version).
    installed: Vec<(ProviderId, usize, u64)>,
}

impl KeyStore for VmKeys<'_> {
    fn status(&mut self, provider: ProviderId) -> KeyStatus<'_> {
        match self.policy.providers.get(provider).map(|p| &p.keys) {
            Some(KeySource::Local(keys)) => KeyStatus::Ready { keys, version: 0 },
            Some(KeySource::Remote(_)) => {
                match self.remotes.get_mut(provider).and_then(Option::as_mut) {
                    Some(remote) => {
                        if remote.sync(&self.policy.limits)
                            && let Some(i) = &remote.installed
                        {
                            // Keys another VM fetched, first seen on a
                            // request: ready them for the host verifier
                            // before this request is checked.
                            self.verifier.prepare(&i.keys);
                            self.installed
                                .push((provider, i.keys.len(), i.meta.version));
                        }
                        let status = remote.status(self.now, self.last_chance);
                        if matches!(status, KeyStatus::Loading) {
                            self.kick = true;
                        }
                        status
                    }
                    None => KeyStatus::Unavailable { retry_after_s: 5 },
                }
            }
            _ => KeyStatus::Unavailable { retry_after_s: 5 },
        }
    }

    fn request_refetch(&mut self, provider: ProviderId) -> bool {
        if self.last_chance {
            return false;
        }
        match self.remotes.get_mut(provider).and_then(Option::as_mut) {
            Some(remote) => {
                let waiting = remote.request_refetch(self.now);
                self.kick |= waiting;
                waiting
            }
            None => false,
        }
    }
}
