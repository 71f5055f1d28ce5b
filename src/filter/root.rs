//! The root context of each VM: reads and checks the plugin configuration,
//! owns the VM state, drives the tick and receives JWKS callouts.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::config_version::{ConfigVersion, RESOURCE_VERSION_ENV, Refusals};
use crate::policy::Policy;
use crate::stats::{Kind, PluginMetric};

use super::abi::{self, Buffer, Level, MetricKind};
use super::host::HostStore;
use super::http::Auth;
use super::vm::Vm;

pub struct Root {
    context_id: u32,
    vm: Option<Rc<Vm>>,
}

impl Root {
    pub fn new(context_id: u32) -> Root {
        Root {
            context_id,
            vm: None,
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Some(vm) = &self.vm {
            vm.on_fetch_response(token_id, body_size);
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let plugin = plugin_name();
        let bytes = match abi::buffer(Buffer::PluginConfiguration, plugin_configuration_size) {
            Ok(b) => b,
            Err(status) => {
                abi::log(
                    Level::Error,
                    &format!(
                        "configuration refused: cannot read the plugin configuration (host status {status})"
                    ),
                );
                let _ = Refusals::record(&HostStore, &plugin, &ConfigVersion::of(&[], None));
                return false;
            }
        };
        // istiod passes the WasmPlugin's resource version in the VM
        // environment (WASI environ).
        let resource_version = std::env::var(RESOURCE_VERSION_ENV).ok();
        let version = ConfigVersion::of(&bytes, resource_version.as_deref());
        let policy = match Policy::from_json(&bytes) {
            Ok(p) => p,
            Err(e) => {
                // Envoy keeps the previous configuration of this plugin
                // deciding (and its config_version gauge stays); this VM
                // goes, so the count is left in shared data for the VMs
                // that stay to publish.
                let count = Refusals::record(&HostStore, &plugin, &version);
                abi::log(
                    Level::Error,
                    &format!(
                        "configuration refused ({}, plugin {plugin}, refusal {}): {e}; \
                         the configuration accepted before goes on deciding",
                        version.describe(),
                        count.map_or_else(|| "?".into(), |c| c.to_string())
                    ),
                );
                return false;
            }
        };
        plugin_metric(&plugin, PluginMetric::ConfigVersion, version.gauge());
        if let Some(rv) = version.resource_gauge() {
            plugin_metric(&plugin, PluginMetric::ResourceVersion, rv);
        }
        let summary = format!(
            "configured {} provider(s), {} rule(s), unmatched requests {}, token cache {} entries; \
             plugin {plugin}, {}",
            policy.providers.len(),
            policy.rules.len(),
            match policy.unmatched {
                crate::config::Unmatched::Deny => "denied",
                crate::config::Unmatched::Allow => "allowed",
            },
            policy.token_cache.max_entries,
            version.describe()
        );
        // A per-VM nonce identifies this VM's fetch leases.
        let nonce = abi::now_ms().rotate_left(17)
            ^ u64::from(self.context_id)
            ^ (std::ptr::from_ref(self) as usize as u64);
        let vm = Rc::new(Vm::new(policy, nonce, plugin));
        vm.start();
        vm.publish_refusals();
        vm.begin_ticking();
        self.vm = Some(vm);
        abi::log(Level::Info, &summary);
        true
    }

    fn on_tick(&mut self) {
        if let Some(vm) = &self.vm {
            vm.tick();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Auth::new(context_id, self.vm.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// This plugin instance's name (`config.name`; Istio: `<namespace>.<name>`).
fn plugin_name() -> String {
    abi::property(&["plugin_name"])
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Sets a gauge, or adds to a counter, of this plugin instance.
pub fn plugin_metric(plugin: &str, metric: PluginMetric, value: u64) {
    let kind = match metric.kind() {
        Kind::Counter => MetricKind::Counter,
        Kind::Gauge => MetricKind::Gauge,
    };
    let Ok(id) = abi::define_metric(kind, &metric.name(plugin)) else {
        return;
    };
    match kind {
        MetricKind::Counter => abi::increment_metric(id, i64::try_from(value).unwrap_or(1)),
        MetricKind::Gauge => abi::record_metric(id, value),
    }
}
