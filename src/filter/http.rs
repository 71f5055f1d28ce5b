//! Adapts the HTTP context: hands each request to its VM and tells Envoy
//! whether to continue or hold it.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::denial::Denial;

use super::abi;
use super::vm::{Disposition, Vm};

pub struct Auth {
    context_id: u32,
    vm: Option<Rc<Vm>>,
}

impl Auth {
    pub fn new(context_id: u32, vm: Option<Rc<Vm>>) -> Auth {
        Auth { context_id, vm }
    }
}

impl Context for Auth {}

/// The stream is gone (answered, or the client went away): the SDK drops
/// the context in `proxy_on_delete`. Not in `on_done`, which this filter
/// does not export (see `CALLBACKS` in `mod.rs`).
impl Drop for Auth {
    fn drop(&mut self) {
        if let Some(vm) = &self.vm {
            vm.forget(self.context_id);
        }
    }
}

impl HttpContext for Auth {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(vm) = &self.vm else {
            // Never configured: fail closed, with the same 503 as missing
            // keys (no realm is configured: the default one).
            let resp = Denial::not_configured().response(crate::policy::defaults::REALM);
            let headers: Vec<(&str, &[u8])> = resp
                .headers
                .iter()
                .map(|(n, v)| (*n, v.as_bytes()))
                .collect();
            let _ = abi::send_response(resp.status, &headers, resp.body.as_bytes());
            return Action::Pause;
        };
        match vm.process(self.context_id, false, false) {
            Disposition::Forwarded => Action::Continue,
            Disposition::Responded | Disposition::Waiting => Action::Pause,
        }
    }

    /// Body data of a request: held while the request waits for keys. With
    /// Envoy's default the host keeps a paused request's body from the
    /// filter anyway; with `allow_on_headers_stop_iteration` it does not,
    /// and "continue" here would forward the request undecided.
    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        self.hold_while_waiting()
    }

    /// Request trailers: as the body.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.hold_while_waiting()
    }
}

impl Auth {
    fn hold_while_waiting(&self) -> Action {
        match &self.vm {
            Some(vm) if !vm.holds(self.context_id) => Action::Continue,
            // Held; or never configured, and already answered 503.
            _ => Action::Pause,
        }
    }
}
