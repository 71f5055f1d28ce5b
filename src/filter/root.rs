//! The root context of each VM: reads and checks the plugin configuration,
//! owns the VM state, drives the tick and receives JWKS callouts.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::policy::Policy;

use super::abi::{self, Buffer, Level};
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
        let bytes = match abi::buffer(Buffer::PluginConfiguration, plugin_configuration_size) {
            Ok(b) => b,
            Err(status) => {
                abi::log(
                    Level::Error,
                    &format!(
                        "configuration refused: cannot read the plugin configuration (host status {status})"
                    ),
                );
                return false;
            }
        };
        let policy = match Policy::from_json(&bytes) {
            Ok(p) => p,
            Err(e) => {
                abi::log(Level::Error, &format!("configuration refused: {e}"));
                return false;
            }
        };
        let summary = format!(
            "configured {} provider(s), {} rule(s), unmatched requests {}, token cache {} entries",
            policy.providers.len(),
            policy.rules.len(),
            match policy.unmatched {
                crate::config::Unmatched::Deny => "denied",
                crate::config::Unmatched::Allow => "allowed",
            },
            policy.token_cache.max_entries
        );
        // A per-VM nonce identifies this VM's fetch leases.
        let nonce = abi::now_ms().rotate_left(17)
            ^ u64::from(self.context_id)
            ^ (std::ptr::from_ref(self) as usize as u64);
        let vm = Rc::new(Vm::new(policy, nonce));
        vm.start();
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
