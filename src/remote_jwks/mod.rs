//! Keys fetched from the issuer's JWKS URL, shared by every VM of a proxy:
//! the records in the shared store and the fetch rules ([`records`]), what
//! the host provides ([`store`]: a store with compare-and-swap, a fetcher),
//! one provider's keys and fetch ([`ProviderKeys`]), and every remote
//! provider of one VM ([`RemoteKeys`]: what the VM's requests, tick and
//! fetch answers call). Host-independent: the filter adapts proxy-wasm
//! shared data and `dispatch_http_call`; the tests drive several simulated
//! VMs over one in-memory store with a fake clock.

mod provider;
pub mod records;
pub mod store;

#[cfg(test)]
mod tests;

pub use provider::{
    CLAIM_ATTEMPTS, Fetched, Installed, ProviderKeys, STATE_UPDATE_ATTEMPTS, check_response,
};

use crate::engine::{KeyStatus, KeyStore};
use crate::jwks::KeySet;
use crate::limits::Limits;
use crate::policy::{KeySource, Policy, ProviderId};
use crate::signature::Verifier;

use records::{FetchFailure, Millis, Purpose};
use store::{Fetcher, SharedStore};

/// What happened to a provider's keys, for the host to log and count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysEvent {
    /// This VM now uses a new key set (fetched by it or another VM).
    Installed {
        provider: ProviderId,
        keys: usize,
        version: u64,
    },
    FetchStarted {
        provider: ProviderId,
        purpose: Purpose,
    },
    /// A fetch failed; `keeping`: keys fetched earlier still serve.
    FetchFailed {
        provider: ProviderId,
        failure: FetchFailure,
        keeping: bool,
    },
    Fetched {
        provider: ProviderId,
        fetched: Fetched,
    },
}

/// What a tick found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickKeys {
    /// Providers whose keys changed in this VM.
    pub changed: Vec<ProviderId>,
    /// Some provider has no usable keys.
    pub starving: bool,
}

/// Where a provider's fetching stands, for requests that wait on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// When the last fetch (by any VM) ended.
    pub last_done: Millis,
    /// A fetch is running (any VM) or claimed by this one.
    pub fetching: bool,
    /// The version of the fetched keys this VM may use now (`None`: none
    /// usable; bootstrap keys are not an arrival).
    pub version: Option<u64>,
}

/// What the state machine works with besides the time: the shared store,
/// the verifier that learns new keys, the size limits.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub store: &'a dyn SharedStore,
    pub verifier: &'a dyn Verifier,
    pub limits: &'a Limits,
}

/// Every remote provider of one VM (`None` for the others).
pub struct RemoteKeys {
    providers: Vec<Option<ProviderKeys>>,
}

impl RemoteKeys {
    /// `vm_nonce` tells this VM's fetch leases from other VMs'.
    pub fn new(policy: &Policy, vm_nonce: u64) -> RemoteKeys {
        let providers = policy
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| match &p.keys {
                KeySource::Remote(spec) => {
                    // One holder id per VM and provider, never 0 (no holder).
                    let me = vm_nonce ^ (u64::try_from(i).unwrap_or(0) << 56);
                    Some(ProviderKeys::new(&p.name, spec.clone(), me.max(1)))
                }
                _ => None,
            })
            .collect();
        RemoteKeys { providers }
    }

    pub fn any(&self) -> bool {
        self.providers.iter().any(Option::is_some)
    }

    pub fn provider(&self, pid: ProviderId) -> Option<&ProviderKeys> {
        self.providers.get(pid).and_then(Option::as_ref)
    }

    /// The keys this VM uses for a provider.
    pub fn installed_keys(&self, pid: ProviderId) -> Option<&KeySet> {
        self.provider(pid)
            .and_then(|p| p.installed.as_ref())
            .map(|i| &i.keys)
    }

    /// At configuration: creates the coordination records other VMs have
    /// not, and picks up keys they already fetched. (The verifier learns
    /// bootstrap keys with the local ones: [`Policy::key_sets`].)
    pub fn start(&mut self, cx: &Context<'_>, events: &mut Vec<KeysEvent>) {
        for (pid, slot) in self.providers.iter_mut().enumerate() {
            let Some(p) = slot else { continue };
            p.ensure_state_record(cx.store);
            if p.sync(cx.store, cx.limits) {
                installed(pid, p, cx.verifier, events);
            }
        }
    }

    /// The key store one decision sees at `now`.
    pub fn view<'a>(
        &'a mut self,
        policy: &'a Policy,
        cx: Context<'a>,
        now: Millis,
        last_chance: bool,
    ) -> KeysView<'a> {
        KeysView {
            policy,
            remote: self,
            cx,
            now,
            last_chance,
            kick: false,
            events: Vec::new(),
        }
    }

    /// The tick: pick up keys other VMs fetched, claim and start due
    /// fetches (first keys, refresh before expiry, retry after failure).
    pub fn tick(
        &mut self,
        cx: &Context<'_>,
        fetcher: &mut dyn Fetcher,
        now: Millis,
        events: &mut Vec<KeysEvent>,
    ) -> TickKeys {
        let store = cx.store;
        let mut out = TickKeys::default();
        for (pid, slot) in self.providers.iter_mut().enumerate() {
            let Some(p) = slot else { continue };
            if p.sync(store, cx.limits) {
                installed(pid, p, cx.verifier, events);
                out.changed.push(pid);
            }
            if !p.busy() {
                p.schedule(store, now);
            }
            if p.has_pending() {
                match p.dispatch(store, fetcher, now) {
                    Ok(Some(purpose)) => events.push(KeysEvent::FetchStarted {
                        provider: pid,
                        purpose,
                    }),
                    Ok(None) => {}
                    Err(failure) => events.push(KeysEvent::FetchFailed {
                        provider: pid,
                        keeping: p.installed.is_some(),
                        failure,
                    }),
                }
            }
            // Bootstrap keys serve, but the fetched ones are still missing.
            out.starving |= p.usable(now).is_none();
        }
        out
    }

    /// The answer to fetch `token`: `check` reads and checks it (see
    /// [`check_response`]). Returns the provider whose fetch it was.
    pub fn on_response(
        &mut self,
        cx: &Context<'_>,
        token: u32,
        check: impl FnOnce(&Limits) -> Result<Vec<u8>, FetchFailure>,
        now: Millis,
        events: &mut Vec<KeysEvent>,
    ) -> Option<ProviderId> {
        let (pid, p) = self
            .providers
            .iter_mut()
            .enumerate()
            .find_map(|(pid, slot)| slot.as_mut().filter(|p| p.owns(token)).map(|p| (pid, p)))?;
        match p.complete(cx.store, check(cx.limits), cx.limits, now) {
            Ok(fetched) => {
                if fetched.changed {
                    installed(pid, p, cx.verifier, events);
                }
                events.push(KeysEvent::Fetched {
                    provider: pid,
                    fetched,
                });
            }
            Err(failure) => events.push(KeysEvent::FetchFailed {
                provider: pid,
                keeping: p.installed.is_some(),
                failure,
            }),
        }
        Some(pid)
    }

    /// Where a provider's fetching stands.
    pub fn progress(&self, store: &dyn SharedStore, pid: ProviderId, now: Millis) -> Progress {
        let Some(p) = self.provider(pid) else {
            return Progress::default();
        };
        let (last_done, fetching) = p.progress(store, now);
        Progress {
            last_done,
            fetching,
            version: p.usable(now).map(|i| i.meta.version),
        }
    }
}

/// A provider's new keys: the verifier learns them, the host hears of it.
fn installed(
    pid: ProviderId,
    p: &ProviderKeys,
    verifier: &dyn Verifier,
    events: &mut Vec<KeysEvent>,
) {
    if let Some(i) = &p.installed {
        verifier.prepare(&i.keys);
        events.push(KeysEvent::Installed {
            provider: pid,
            keys: i.keys.len(),
            version: i.meta.version,
        });
    }
}

/// The keys one decision sees: local ones from the policy, remote ones from
/// this VM's view of the shared records (synced on the spot, so keys
/// another VM just fetched serve at once).
pub struct KeysView<'a> {
    policy: &'a Policy,
    remote: &'a mut RemoteKeys,
    cx: Context<'a>,
    now: Millis,
    last_chance: bool,
    /// A fetch was claimed or is awaited: the host should tick now.
    pub kick: bool,
    /// Key sets installed during this decision.
    pub events: Vec<KeysEvent>,
}

/// The version bootstrap keys are known by: fetched versions start at 1,
/// so tokens verified with bootstrap keys leave the cache when fetched keys
/// arrive.
pub const BOOTSTRAP_VERSION: u64 = 0;

impl KeyStore for KeysView<'_> {
    /// Local keys: 0. Remote keys: the fetched keys this VM installed, if
    /// they may serve now, else its bootstrap keys (version 0). No store
    /// read: a key set another VM stored is learned on this VM's next tick
    /// (at most [`crate::tick::IDLE_TICK_MS`] apart) or its next
    /// [`KeyStore::status`], i.e. the next token it must verify.
    fn held_version(&self, provider: ProviderId) -> Option<u64> {
        let configured = self.policy.providers.get(provider)?;
        match &configured.keys {
            KeySource::Local(_) => Some(0),
            KeySource::Remote(_) => {
                let p = self.remote.provider(provider)?;
                match p.usable(self.now) {
                    Some(installed) => Some(installed.meta.version),
                    None => configured.bootstrap.as_ref().map(|_| BOOTSTRAP_VERSION),
                }
            }
            _ => None,
        }
    }

    fn status(&mut self, provider: ProviderId) -> KeyStatus<'_> {
        let configured = self.policy.providers.get(provider);
        match configured.map(|p| &p.keys) {
            Some(KeySource::Local(keys)) => KeyStatus::Ready { keys, version: 0 },
            Some(KeySource::Remote(_)) => {
                let Some(Some(p)) = self.remote.providers.get_mut(provider) else {
                    return KeyStatus::Unavailable { retry_after_s: 5 };
                };
                if p.sync(self.cx.store, self.cx.limits) {
                    installed(provider, p, self.cx.verifier, &mut self.events);
                }
                if p.usable(self.now).is_none()
                    && let Some(bootstrap) = configured.and_then(|c| c.bootstrap.as_ref())
                {
                    return KeyStatus::Ready {
                        keys: bootstrap,
                        version: BOOTSTRAP_VERSION,
                    };
                }
                let status = p.status(self.cx.store, self.now, self.last_chance);
                if matches!(status, KeyStatus::Loading) {
                    self.kick = true;
                }
                status
            }
            _ => KeyStatus::Unavailable { retry_after_s: 5 },
        }
    }

    fn request_refetch(&mut self, provider: ProviderId) -> bool {
        if self.last_chance {
            return false;
        }
        match self.remote.providers.get_mut(provider) {
            Some(Some(p)) => {
                let waiting = p.request_refetch(self.cx.store, self.now);
                self.kick |= waiting;
                waiting
            }
            _ => false,
        }
    }
}
