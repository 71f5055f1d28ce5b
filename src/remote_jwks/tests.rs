//! The remote-JWKS state machine driven deterministically: several
//! simulated VMs over one in-memory shared store (with Envoy's
//! compare-and-swap rules), fake fetchers that record what they were asked
//! and answer when the test says, and a clock the test moves.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Value, json};

use super::records::{FetchFailure, Millis, Purpose};
use super::store::{Cas, FetchRequest, Fetcher, SharedStore, StoreError};
use super::*;
use crate::engine::{CacheUse, Env, Evaluation, KeyStatus, KeyStore, Outcome, evaluate};
use crate::jwks::tests::{ec_jwk, rsa_jwk};
use crate::policy::{CacheSettings, Policy};
use crate::request::RecordedRequest;
use crate::signature::NoAcceleration;
use crate::testkit;
use crate::token_cache::TokenCache;
use crate::trace::NoTrace;

/// Proxy-wasm shared data in memory: every write bumps the CAS; a write
/// with a stale CAS fails, and inserting a missing key succeeds whatever
/// CAS is given (as in Envoy).
#[derive(Default)]
struct MemStore {
    data: RefCell<HashMap<String, (Vec<u8>, Cas)>>,
    next: Cell<Cas>,
    /// How many of the next compare-and-swap writes another VM beats (it
    /// writes the same key just before).
    races: Cell<usize>,
    /// How many reads there were (each one a copy out of the host).
    reads: Cell<usize>,
}

impl SharedStore for MemStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, Cas)> {
        self.reads.set(self.reads.get() + 1);
        self.data.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<Cas>) -> Result<(), StoreError> {
        let mut data = self.data.borrow_mut();
        if cas.is_some() && self.races.get() > 0 {
            self.races.set(self.races.get() - 1);
            self.next.set(self.next.get() + 1);
            if let Some(entry) = data.get_mut(key) {
                entry.1 = self.next.get();
            }
        }
        if let (Some(want), Some((_, have))) = (cas, data.get(key))
            && want != *have
        {
            return Err(StoreError::CasMismatch);
        }
        self.next.set(self.next.get() + 1);
        data.insert(key.to_owned(), (value.to_vec(), self.next.get()));
        Ok(())
    }
}

/// One fetch a VM started.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Started {
    vm: usize,
    token: u32,
    path: String,
}

/// The network: records fetches; `refuse` makes starts fail (unknown
/// cluster).
#[derive(Default)]
struct Net {
    started: RefCell<Vec<Started>>,
    next: Cell<u32>,
    refuse: Cell<bool>,
}

struct VmFetcher {
    vm: usize,
    net: Rc<Net>,
}

impl Fetcher for VmFetcher {
    fn start(&mut self, request: &FetchRequest<'_>) -> Result<u32, u32> {
        if self.net.refuse.get() {
            return Err(2);
        }
        self.net.next.set(self.net.next.get() + 1);
        let token = self.net.next.get();
        self.net.started.borrow_mut().push(Started {
            vm: self.vm,
            token,
            path: request.path.to_owned(),
        });
        Ok(token)
    }
}

const TIMEOUT_MS: u64 = 5000;
const TTL_S: u64 = 600;
const MAX_STALE_S: u64 = 3600;
const COOLDOWN_S: u64 = 30;

fn policy() -> Policy {
    policy_with(|_| {})
}

fn policy_with(change: impl FnOnce(&mut Value)) -> Policy {
    let mut config = json!({
            "providers": {"idp": {
                "issuer": "https://idp.example.com",
                "remote_jwks": {
                    "cluster": "jwks", "uri": "https://idp.example.com/jwks.json",
                    "timeout_ms": TIMEOUT_MS, "cache_ttl_s": TTL_S,
                    "max_stale_s": MAX_STALE_S, "refetch_cooldown_s": COOLDOWN_S
                }
            }},
            "rules": [{"match": {}, "requires": {}}]
    });
    change(&mut config);
    Policy::from_json(config.to_string().as_bytes()).unwrap()
}

fn jwks(keys: &[Value]) -> Vec<u8> {
    json!({ "keys": keys }).to_string().into_bytes()
}

/// Several VMs of one proxy sharing a store and a network.
struct Proxy {
    policy: Policy,
    store: MemStore,
    net: Rc<Net>,
    vms: Vec<(RemoteKeys, VmFetcher)>,
    events: Vec<(usize, KeysEvent)>,
    now: Millis,
}

impl Proxy {
    fn new(workers: usize) -> Proxy {
        Proxy::with(workers, policy())
    }

    fn with(workers: usize, policy: Policy) -> Proxy {
        let net = Rc::new(Net::default());
        let vms = (0..workers)
            .map(|vm| {
                let fetcher = VmFetcher {
                    vm,
                    net: net.clone(),
                };
                (RemoteKeys::new(&policy, 1000 + vm as u64), fetcher)
            })
            .collect();
        let mut proxy = Proxy {
            policy,
            store: MemStore::default(),
            net,
            vms,
            events: Vec::new(),
            now: 1_750_000_000_000,
        };
        for vm in 0..workers {
            let mut events = Vec::new();
            let cx = Context {
                store: &proxy.store,
                verifier: &NoAcceleration,
                limits: &proxy.policy.limits,
            };
            proxy.vms[vm].0.start(&cx, &mut events);
            proxy.events.extend(events.into_iter().map(|e| (vm, e)));
        }
        proxy
    }

    fn tick(&mut self, vm: usize) -> TickKeys {
        let mut events = Vec::new();
        let cx = Context {
            store: &self.store,
            verifier: &NoAcceleration,
            limits: &self.policy.limits,
        };
        let (keys, fetcher) = &mut self.vms[vm];
        let found = keys.tick(&cx, fetcher, self.now, &mut events);
        self.events.extend(events.into_iter().map(|e| (vm, e)));
        found
    }

    fn tick_all(&mut self) {
        for vm in 0..self.vms.len() {
            self.tick(vm);
        }
    }

    /// Answers fetch `token` with `status` and `body`.
    fn answer(&mut self, token: u32, status: Option<u16>, body: &[u8]) -> Option<ProviderId> {
        let vm = self
            .net
            .started
            .borrow()
            .iter()
            .find(|s| s.token == token)
            .unwrap()
            .vm;
        let mut events = Vec::new();
        let cx = Context {
            store: &self.store,
            verifier: &NoAcceleration,
            limits: &self.policy.limits,
        };
        let body = body.to_vec();
        let done = self.vms[vm].0.on_response(
            &cx,
            token,
            |limits| check_response(status, body.len(), || Some(body), limits),
            self.now,
            &mut events,
        );
        self.events.extend(events.into_iter().map(|e| (vm, e)));
        done
    }

    fn started(&self) -> Vec<Started> {
        self.net.started.borrow().clone()
    }

    fn last_token(&self) -> u32 {
        self.started().last().unwrap().token
    }

    /// A decision's view of VM `vm`'s keys: (status, version, kick).
    fn status(&mut self, vm: usize, last_chance: bool) -> (&'static str, Option<u64>, bool) {
        let cx = Context {
            store: &self.store,
            verifier: &NoAcceleration,
            limits: &self.policy.limits,
        };
        let mut view = self.vms[vm].0.view(&self.policy, cx, self.now, last_chance);
        let (name, version) = match view.status(0) {
            KeyStatus::Ready { version, .. } => ("ready", Some(version)),
            KeyStatus::Loading => ("loading", None),
            KeyStatus::Unavailable { retry_after_s } => ("unavailable", Some(retry_after_s)),
        };
        let kick = view.kick;
        let events = std::mem::take(&mut view.events);
        self.events.extend(events.into_iter().map(|e| (vm, e)));
        (name, version, kick)
    }

    /// A token with an unknown `kid` on VM `vm`: whether it may wait.
    fn unknown_kid(&mut self, vm: usize) -> bool {
        let cx = Context {
            store: &self.store,
            verifier: &NoAcceleration,
            limits: &self.policy.limits,
        };
        let mut view = self.vms[vm].0.view(&self.policy, cx, self.now, false);
        view.request_refetch(0)
    }

    /// Decides a request with `token` on VM `vm`, with its token cache,
    /// as the filter does: the decision's key events reach the cache.
    fn decide(&mut self, vm: usize, token: &str, cache: &mut TokenCache) -> Evaluation {
        let cx = Context {
            store: &self.store,
            verifier: &NoAcceleration,
            limits: &self.policy.limits,
        };
        let mut view = self.vms[vm].0.view(&self.policy, cx, self.now, false);
        let req = RecordedRequest::get("/").bearer(token);
        let head = req.head();
        let mut env = Env {
            keys: &mut view,
            verifier: &NoAcceleration,
            cache: Some(&mut *cache),
            now: self.now / 1000,
        };
        let eval = evaluate(&self.policy, &mut env, &req.view(&head), &mut NoTrace);
        let events = std::mem::take(&mut view.events);
        self.installed_into(cache, vm, events);
        eval
    }

    /// Ticks VM `vm` and, as the filter does, drops its cache entries of
    /// key sets it no longer uses.
    fn tick_with(&mut self, vm: usize, cache: &mut TokenCache) {
        let before = self.events.len();
        self.tick(vm);
        let events: Vec<KeysEvent> = self.events[before..]
            .iter()
            .map(|(_, e)| e.clone())
            .collect();
        self.installed_into(cache, vm, events);
    }

    fn installed_into(&mut self, cache: &mut TokenCache, vm: usize, events: Vec<KeysEvent>) {
        for e in &events {
            if let KeysEvent::Installed {
                provider, version, ..
            } = e
            {
                cache.retain_version(*provider, *version);
            }
        }
        self.events.extend(events.into_iter().map(|e| (vm, e)));
    }

    fn fetch_failures(&self) -> Vec<FetchFailure> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                KeysEvent::FetchFailed { failure, .. } => Some(failure.clone()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn one_fetch_for_all_workers_then_one_per_ttl() {
    let mut p = Proxy::new(4);
    // Before any keys, a request waits and kicks the tick.
    assert_eq!(p.status(2, false), ("loading", None, true));
    p.tick_all();
    assert_eq!(p.started().len(), 1, "one fetch, whoever ticks first");
    assert_eq!(p.started()[0].path, "/jwks.json");
    p.now += 120;
    p.tick_all();
    assert_eq!(p.started().len(), 1, "no second fetch while the first runs");
    let token = p.last_token();
    assert_eq!(p.answer(token, Some(200), &jwks(&[rsa_jwk("a")])), Some(0));
    // The fetcher installed the keys; the others pick them up on a tick
    // or on their next request.
    assert_eq!(p.status(0, false).0, "ready");
    assert_eq!(p.status(3, false), ("ready", Some(1), false));
    p.tick_all();
    let installed = p
        .events
        .iter()
        .filter(|(_, e)| matches!(e, KeysEvent::Installed { version: 1, .. }))
        .count();
    assert_eq!(installed, 4, "every VM installed version 1 once");
    // Nothing more until the refresh, a tenth of the TTL (at most a
    // minute) before expiry.
    let refresh_at = p.now - 120 + (TTL_S - 60) * 1000;
    p.now = refresh_at - 1;
    p.tick_all();
    assert_eq!(p.started().len(), 1);
    p.now = refresh_at + 120;
    p.tick_all();
    p.tick_all();
    assert_eq!(p.started().len(), 2, "exactly one refresh for all");
    let token = p.last_token();
    p.answer(token, Some(200), &jwks(&[rsa_jwk("a")]));
    assert!(
        p.events.iter().any(|(_, e)| matches!(
            e,
            KeysEvent::Fetched { fetched, .. } if fetched.version == 1 && !fetched.changed
        )),
        "the same keys keep their version: nothing re-parsed or evicted"
    );
}

#[test]
fn a_dead_fetcher_loses_its_lease() {
    let mut p = Proxy::new(3);
    p.tick(0);
    assert_eq!(p.started()[0].vm, 0);
    // VM 0 dies mid-fetch: its answer never comes. The others wait while
    // the lease (the fetch timeout plus a second) holds, then one fetches.
    let lease_ends = p.now + TIMEOUT_MS + 1000;
    p.now = lease_ends - 1;
    p.tick(1);
    p.tick(2);
    assert_eq!(p.started().len(), 1);
    assert_eq!(p.status(1, false).0, "loading", "still worth waiting");
    p.now = lease_ends;
    p.tick(1);
    p.tick(2);
    assert_eq!(p.started().len(), 2);
    assert_eq!(p.started()[1].vm, 1);
}

#[test]
fn rotation_refetches_once_and_bounds_unknown_kid_floods() {
    let mut p = Proxy::new(2);
    p.tick(0);
    let t = p.last_token();
    p.answer(t, Some(200), &jwks(&[rsa_jwk("a")]));
    p.now += 60_000;
    // A token signed with a new key: one refetch, which the request may
    // wait for; every other unknown kid waits for the same fetch.
    assert!(p.unknown_kid(1));
    assert!(p.unknown_kid(0), "a refetch is under way: wait for it");
    p.tick_all();
    assert_eq!(p.started().len(), 2);
    assert!(p.events.iter().any(|(vm, e)| *vm == 1
        && matches!(
            e,
            KeysEvent::FetchStarted {
                purpose: Purpose::UnknownKid,
                ..
            }
        )));
    let t = p.last_token();
    p.answer(t, Some(200), &jwks(&[rsa_jwk("a"), ec_jwk("b")]));
    assert_eq!(p.status(1, false), ("ready", Some(2), false));
    assert_eq!(p.status(0, false), ("ready", Some(2), false));
    // A flood of random kids within the cooldown costs nothing more.
    for i in 0..1000 {
        p.now += 10;
        assert!(!p.unknown_kid(i % 2), "no refetch inside the cooldown");
        p.tick(i % 2);
    }
    assert_eq!(p.started().len(), 2);
    // After the cooldown, one more.
    p.now += COOLDOWN_S * 1000;
    assert!(p.unknown_kid(0));
    assert!(
        !p.unknown_kid(1) || p.unknown_kid(1),
        "either waits for VM 0's fetch"
    );
    p.tick_all();
    assert_eq!(p.started().len(), 3);
}

#[test]
fn outages_keep_the_last_keys_until_max_stale_and_back_off() {
    let mut p = Proxy::new(1);
    p.tick(0);
    let t = p.last_token();
    p.answer(t, Some(200), &jwks(&[rsa_jwk("a")]));
    let expires = p.now + TTL_S * 1000;
    // The IdP goes down: every fetch from the refresh on fails, with
    // retries 1, 2, 4, 8, 16 then 30 s (the cooldown) apart.
    p.now = expires - 60_000;
    let mut gaps = Vec::new();
    let mut last = None;
    while p.now < expires + 200_000 {
        let before = p.started().len();
        p.tick(0);
        if p.started().len() > before {
            if let Some(prev) = last {
                gaps.push((p.now - prev) / 1000);
            }
            last = Some(p.now);
            let t = p.last_token();
            p.answer(t, Some(503), b"down");
        }
        assert_eq!(p.status(0, false).0, "ready", "stale keys serve");
        p.now += 250;
    }
    assert_eq!(&gaps[..7], [1, 2, 4, 8, 16, 30, 30], "{gaps:?}");
    assert!(
        p.fetch_failures()
            .iter()
            .all(|f| *f == FetchFailure::Status(503))
    );
    // Past max_stale the keys no longer serve: 503 with Retry-After.
    p.now = expires + MAX_STALE_S * 1000;
    let (status, retry, _) = p.status(0, true);
    assert_eq!(status, "unavailable");
    assert!(retry.unwrap() >= 1);
    // An empty JWKS is its own failure and keeps the last keys too.
    let mut q = Proxy::new(1);
    q.tick(0);
    let t = q.last_token();
    q.answer(t, Some(200), &jwks(&[rsa_jwk("a")]));
    q.now += 100_000;
    assert!(q.unknown_kid(0));
    q.tick(0);
    let t = q.last_token();
    q.answer(t, Some(200), &jwks(&[]));
    assert_eq!(q.fetch_failures(), [FetchFailure::Empty]);
    assert!(
        q.events
            .iter()
            .any(|(_, e)| matches!(e, KeysEvent::FetchFailed { keeping: true, .. }))
    );
    assert_eq!(q.status(0, false), ("ready", Some(1), false));
}

#[test]
fn a_fetch_that_cannot_start_is_a_failure_with_back_off() {
    let mut p = Proxy::new(1);
    p.net.refuse.set(true);
    p.tick(0);
    assert!(matches!(
        p.fetch_failures().as_slice(),
        [FetchFailure::NotStarted(why)] if why.contains("cluster \"jwks\"")
    ));
    // Not before the back-off: no keys, nothing under way, retry later.
    p.now += 500;
    p.tick(0);
    assert_eq!(p.fetch_failures().len(), 1);
    let (status, retry, _) = p.status(0, true);
    assert_eq!((status, retry), ("unavailable", Some(1)));
}

#[test]
fn responses_are_checked_before_they_are_stored() {
    let limits = crate::limits::Limits::default();
    let ok = jwks(&[rsa_jwk("a")]);
    let check = |status, body: &[u8]| {
        let body = body.to_vec();
        check_response(status, body.len(), || Some(body), &limits)
    };
    assert_eq!(check(Some(200), &ok), Ok(ok.clone()));
    assert_eq!(check(None, &ok), Err(FetchFailure::NoResponse));
    assert_eq!(check(Some(404), &ok), Err(FetchFailure::Status(404)));
    assert_eq!(check(Some(200), &jwks(&[])), Err(FetchFailure::Empty));
    assert!(matches!(
        check(Some(200), b"{nope"),
        Err(FetchFailure::Unusable(_))
    ));
    assert!(matches!(
        check(Some(200), &jwks(&[json!({"kty": "RSA", "kid": "x", "n": "AQAB", "e": "AQAB"})])),
        Err(FetchFailure::Unusable(why)) if why.starts_with("no usable key")
    ));
    // An oversized body is refused before it is read.
    let refused = check_response(
        Some(200),
        limits.max_jwks_bytes + 1,
        || panic!("read"),
        &limits,
    );
    assert_eq!(
        refused,
        Err(FetchFailure::TooLarge(limits.max_jwks_bytes + 1))
    );
}

/// The coordination record is raced by every VM: a claim retries past
/// other VMs' writes and gives up after [`CLAIM_ATTEMPTS`] lost races
/// (others are claiming: they will fetch); a state update retries up to
/// [`STATE_UPDATE_ATTEMPTS`] times, so a finished fetch is recorded.
#[test]
fn compare_and_swap_races_are_settled() {
    let mut p = Proxy::new(2);
    p.store.races.set(CLAIM_ATTEMPTS - 1);
    p.tick(0);
    assert_eq!(p.started().len(), 1, "claimed on the last attempt");
    let t = p.last_token();
    // The fetch ends while others write the record: recorded all the same.
    p.store.races.set(STATE_UPDATE_ATTEMPTS - 1);
    p.answer(t, Some(503), b"down");
    p.now += 1; // inside the back-off that the failure recorded
    p.tick(1);
    assert_eq!(p.started().len(), 1, "the failure and its back-off landed");

    let mut q = Proxy::new(1);
    q.store.races.set(CLAIM_ATTEMPTS);
    q.tick(0);
    assert!(
        q.started().is_empty(),
        "lost every attempt: left to the winner"
    );
    q.tick(0);
    assert_eq!(q.started().len(), 1, "and tried again at the next tick");
    // Sequential claims: the second VM finds the lease taken.
    let mut r = Proxy::new(2);
    r.tick(1);
    r.tick(0);
    assert_eq!(r.started().len(), 1);
    assert_eq!(r.started()[0].vm, 1);
}

#[test]
fn bootstrap_keys_serve_until_fetched_keys_arrive_and_whenever_none_are_usable() {
    let policy = policy_with(|c| {
        c["providers"]["idp"]["local_jwks"] = json!({"keys": [rsa_jwk("boot")]});
    });
    let mut p = Proxy::with(2, policy);
    // Before any fetch: the bootstrap keys serve, version 0, no request
    // waits or kicks the tick.
    assert_eq!(p.status(0, false), ("ready", Some(0), false));
    // The fetch still starts, and the tick stays fast until it lands.
    assert!(p.tick(0).starving);
    assert_eq!(p.started().len(), 1);
    // The IdP is down: the bootstrap keys go on serving.
    let token = p.last_token();
    p.answer(token, Some(503), b"");
    assert_eq!(p.status(1, false), ("ready", Some(0), false));
    assert_eq!(p.vms[1].0.progress(&p.store, 0, p.now).version, None);
    // A token with a kid the bootstrap keys lack may wait for a refetch,
    // which fails too: the waiter's fetch is over, no keys "arrived".
    p.now += COOLDOWN_S * 1000 + 1;
    assert!(p.unknown_kid(1));
    p.tick(1);
    let token = p.last_token();
    p.answer(token, Some(503), b"");
    let progress = p.vms[1].0.progress(&p.store, 0, p.now);
    assert_eq!((progress.version, progress.fetching), (None, false));
    // The IdP is back with rotated keys: fetched keys take over (version
    // 1, so tokens cached under the bootstrap keys are dropped).
    p.now += 3_600_000;
    p.tick(0);
    let token = p.last_token();
    p.answer(token, Some(200), &jwks(&[rsa_jwk("rotated")]));
    assert_eq!(p.status(0, false), ("ready", Some(1), false));
    assert_eq!(p.status(1, false), ("ready", Some(1), false));
    assert!(!p.tick(1).starving);
    // Fetched keys too stale to use: the bootstrap keys serve again rather
    // than failing every request.
    p.net.refuse.set(true);
    p.now += (TTL_S + MAX_STALE_S) * 1000 + 1;
    assert_eq!(p.status(0, false), ("ready", Some(0), false));
    assert!(p.tick(0).starving);
}

/// A Cognito-like provider whose keys come from the remote JWKS, with the
/// test keys' issuer, and a cache per VM.
fn cached_proxy(workers: usize) -> (Proxy, Vec<TokenCache>) {
    let policy = policy_with(|c| c["providers"]["idp"]["issuer"] = json!(testkit::ISSUER));
    let p = Proxy::with(workers, policy);
    let caches = (0..workers)
        .map(|_| TokenCache::new(CacheSettings::default()))
        .collect();
    (p, caches)
}

fn allowed(e: &Evaluation) -> bool {
    matches!(e.outcome, Outcome::Allow(_))
}

/// The test keys' JWKS without `kid`: the key set after `kid` was removed.
fn jwks_without(kid: &str) -> Vec<u8> {
    let mut set = testkit::jwks();
    set["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != json!(kid));
    set.to_string().into_bytes()
}

#[test]
fn a_cache_hit_reads_nothing_from_the_shared_store() {
    let (mut p, mut caches) = cached_proxy(1);
    p.now = testkit::NOW * 1000;
    p.tick(0);
    let fetch = p.last_token();
    p.answer(fetch, Some(200), testkit::jwks().to_string().as_bytes());
    let token = testkit::rs256(testkit::cognito("order/post.order"));
    let first = p.decide(0, &token, &mut caches[0]);
    assert!(allowed(&first));
    assert_eq!(first.cache, CacheUse::Miss);
    let reads = p.store.reads.get();
    for _ in 0..3 {
        let hit = p.decide(0, &token, &mut caches[0]);
        assert!(allowed(&hit));
        assert_eq!(hit.cache, CacheUse::Hit);
    }
    assert_eq!(p.store.reads.get(), reads, "hits never read the store");
    // A token that must be verified still asks the store first.
    let other = testkit::es256(testkit::cognito("order/post.order"));
    let miss = p.decide(0, &other, &mut caches[0]);
    assert!(allowed(&miss));
    assert_eq!(miss.cache, CacheUse::Miss);
    assert!(p.store.reads.get() > reads, "a miss syncs with the store");
}

#[test]
fn a_removed_key_stops_serving_cached_tokens_at_the_next_tick_or_miss() {
    let (mut p, mut caches) = cached_proxy(2);
    p.now = testkit::NOW * 1000;
    p.tick(0);
    let fetch = p.last_token();
    p.answer(fetch, Some(200), testkit::jwks().to_string().as_bytes());
    p.tick_with(1, &mut caches[1]);
    let old = testkit::rs256(testkit::cognito("order/post.order"));
    let (c0, c1) = caches.split_at_mut(1);
    assert!(allowed(&p.decide(1, &old, &mut c1[0])));
    assert_eq!(p.decide(1, &old, &mut c1[0]).cache, CacheUse::Hit);
    // VM 0 fetches a key set without rsa-1 (the IdP revoked it), and a
    // token it must verify with the old key is refused there at once.
    p.now += (TTL_S - 30) * 1000;
    p.net.refuse.set(false);
    p.tick(0);
    let fetch = p.last_token();
    p.answer(fetch, Some(200), &jwks_without("rsa-1"));
    assert!(!allowed(&p.decide(0, &old, &mut c0[0])));
    // VM 1 has not ticked since: its cached verification is the only
    // thing that still accepts the old key, until its next tick (at most
    // tick::IDLE_TICK_MS later).
    assert!(allowed(&p.decide(1, &old, &mut c1[0])));
    p.now += u64::from(crate::tick::IDLE_TICK_MS);
    p.tick_with(1, &mut c1[0]);
    let after = p.decide(1, &old, &mut c1[0]);
    assert!(!allowed(&after), "{:?}", after.outcome);
    assert_ne!(after.cache, CacheUse::Hit);

    // The same without a tick: a token VM 1 must verify syncs it first, and
    // from then on the old entries are not hits either.
    let (mut p, mut caches) = cached_proxy(2);
    p.now = testkit::NOW * 1000;
    p.tick(0);
    let fetch = p.last_token();
    p.answer(fetch, Some(200), testkit::jwks().to_string().as_bytes());
    assert!(allowed(&p.decide(1, &old, &mut caches[1])));
    p.now += (TTL_S - 30) * 1000;
    p.tick(0);
    let fetch = p.last_token();
    p.answer(fetch, Some(200), &jwks_without("rsa-1"));
    let new = testkit::es256(testkit::cognito("order/post.order"));
    let miss = p.decide(1, &new, &mut caches[1]);
    assert!(allowed(&miss), "the new key set serves at once on a miss");
    let after = p.decide(1, &old, &mut caches[1]);
    assert!(!allowed(&after), "{:?}", after.outcome);
    assert_ne!(after.cache, CacheUse::Hit);
}

#[test]
fn cached_tokens_do_not_outlive_unusable_keys() {
    let (mut p, mut caches) = cached_proxy(1);
    p.now = testkit::NOW * 1000;
    p.tick(0);
    let fetch = p.last_token();
    p.answer(fetch, Some(200), testkit::jwks().to_string().as_bytes());
    let mut claims = testkit::cognito("order/post.order");
    claims["exp"] = json!(testkit::NOW + 86_400);
    let token = testkit::rs256(claims);
    assert!(allowed(&p.decide(0, &token, &mut caches[0])));
    assert_eq!(p.decide(0, &token, &mut caches[0]).cache, CacheUse::Hit);
    // Every refresh fails, past max_stale_s: the keys may no longer serve,
    // and neither may what was verified with them (the token itself is
    // still within its exp).
    p.net.refuse.set(true);
    p.now += (TTL_S + MAX_STALE_S) * 1000 + 1;
    assert!(p.now / 1000 < testkit::NOW + 86_400);
    let after = p.decide(0, &token, &mut caches[0]);
    assert!(!allowed(&after), "{:?}", after.outcome);
    assert_ne!(after.cache, CacheUse::Hit);
}
