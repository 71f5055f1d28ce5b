//! Adapts the request to the core: every header entry with one hostcall
//! (indexed by [`RequestHead`] without copying), and the route name only
//! when asked, at most once. Bytes stay bytes: non-UTF-8 values are the
//! core's problem to refuse, never a reason to crash.

use crate::request::{Request, RequestHead};

use super::abi::{self, Map};

pub struct HostRequest {
    pub head: RequestHead,
    route: Option<Option<Vec<u8>>>,
}

impl HostRequest {
    /// Reads the current request's headers. A host error or a buffer that
    /// does not parse gives an empty head, which every rule treats as a
    /// request without path or token: refused, never let through.
    pub fn read() -> HostRequest {
        let head = abi::header_pairs(Map::RequestHeaders)
            .ok()
            .and_then(RequestHead::from_pairs_buffer)
            .unwrap_or_default();
        HostRequest { head, route: None }
    }

    /// Envoy's route name for the request (`xds.route_name`).
    pub fn route(&mut self) -> Option<&[u8]> {
        self.route
            .get_or_insert_with(|| abi::property(&["xds", "route_name"]).ok().flatten())
            .as_deref()
    }

    /// The view a decision takes; `with_route` when some rule needs it.
    pub fn view(&mut self, with_route: bool) -> Request<'_> {
        if with_route {
            self.route();
        }
        Request {
            head: &self.head,
            route: self.route.as_ref().and_then(|r| r.as_deref()),
        }
    }
}
