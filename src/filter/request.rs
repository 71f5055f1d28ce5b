//! The request as the core sees it, read lazily through hostcalls: a header
//! is fetched from the host only when the policy asks for it, and at most
//! once. Bytes stay bytes: non-UTF-8 values are the core's problem to refuse,
//! never a reason to crash.

use crate::request::RequestView;

use super::abi::{self, Map};

#[derive(Default)]
pub struct HostRequest {
    read: Vec<(String, Option<Vec<u8>>)>,
}

impl HostRequest {
    fn cached(&mut self, key: &str, fetch: impl FnOnce() -> Option<Vec<u8>>) -> Option<Vec<u8>> {
        if let Some((_, v)) = self.read.iter().find(|(k, _)| k == key) {
            return v.clone();
        }
        let value = fetch();
        self.read.push((key.to_owned(), value.clone()));
        value
    }
}

impl RequestView for HostRequest {
    fn method(&mut self) -> Option<Vec<u8>> {
        self.header(":method")
    }

    fn path(&mut self) -> Option<Vec<u8>> {
        self.header(":path")
    }

    fn route_name(&mut self) -> Option<Vec<u8>> {
        self.cached("\0route", || {
            abi::property(&["xds", "route_name"]).ok().flatten()
        })
    }

    fn header(&mut self, name: &str) -> Option<Vec<u8>> {
        self.cached(name, || {
            abi::header(Map::RequestHeaders, name).ok().flatten()
        })
    }
}
