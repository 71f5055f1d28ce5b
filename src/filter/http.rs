//! The per-request context: hands the request to the VM's policy and
//! tells the host whether to continue or hold it.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

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

impl Context for Auth {
    fn on_done(&mut self) -> bool {
        if let Some(vm) = &self.vm {
            vm.forget(self.context_id);
        }
        true
    }
}

impl HttpContext for Auth {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(vm) = &self.vm else {
            // Never configured: fail closed.
            let _ = abi::send_response(503, &[("content-type", b"application/json")], br#"{"error":"temporarily_unavailable","error_description":"policy not configured"}"#);
            return Action::Pause;
        };
        match vm.process(self.context_id, false, false) {
            Disposition::Forwarded => Action::Continue,
            Disposition::Responded | Disposition::Waiting => Action::Pause,
        }
    }
}
