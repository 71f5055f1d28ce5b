//! What the policy needs to know about a request, read lazily: the host
//! layer implements [`RequestView`] over its header hostcalls so only the
//! headers a decision needs are ever read.

/// A request as the policy sees it. Values are raw bytes: clients control
/// them and they need not be UTF-8.
pub trait RequestView {
    fn method(&mut self) -> Option<Vec<u8>>;
    /// The request target (`:path`), query string included.
    fn path(&mut self) -> Option<Vec<u8>>;
    /// The host's route name (Envoy: `xds.route_name`), if any.
    fn route_name(&mut self) -> Option<Vec<u8>>;
    /// The value of a request header; `name` is lower-case. Repeated
    /// headers arrive joined, as Envoy joins them.
    fn header(&mut self, name: &str) -> Option<Vec<u8>>;
}

/// A request held in memory: what `jwt-policy explain`, the fuzz targets
/// and the unit tests decide. Repeated headers are joined as Envoy joins
/// them before a filter sees them (`,`; `; ` for `cookie`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: Vec<u8>,
    pub path: Vec<u8>,
    pub route: Option<Vec<u8>>,
    /// Lower-case names, in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// How many header reads the policy made (see [`RequestView::header`]).
    pub header_reads: usize,
    /// How many times the policy asked for the method and the route name
    /// (each is a hostcall in the filter).
    pub method_reads: usize,
    pub route_reads: usize,
}

impl RecordedRequest {
    pub fn new(method: &str, path: &str) -> Self {
        RecordedRequest {
            method: method.as_bytes().to_vec(),
            path: path.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// Adds a header (the name is lower-cased).
    pub fn with_header(mut self, name: &str, value: &[u8]) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_vec()));
        self
    }

    pub fn with_route(mut self, route: &str) -> Self {
        self.route = Some(route.as_bytes().to_vec());
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        let value = format!("Bearer {token}");
        self.with_header("authorization", value.as_bytes())
    }
}

impl RequestView for RecordedRequest {
    fn method(&mut self) -> Option<Vec<u8>> {
        self.method_reads = self.method_reads.saturating_add(1);
        Some(self.method.clone())
    }

    fn path(&mut self) -> Option<Vec<u8>> {
        Some(self.path.clone())
    }

    fn route_name(&mut self) -> Option<Vec<u8>> {
        self.route_reads = self.route_reads.saturating_add(1);
        self.route.clone()
    }

    fn header(&mut self, name: &str) -> Option<Vec<u8>> {
        self.header_reads = self.header_reads.saturating_add(1);
        let separator: &[u8] = if name == "cookie" { b"; " } else { b"," };
        let values: Vec<&[u8]> = self
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect();
        (!values.is_empty()).then(|| values.join(separator))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_are_joined_like_envoy() {
        let mut r = RecordedRequest::get("/")
            .with_header("Authorization", b"Bearer a")
            .with_header("cookie", b"a=1")
            .with_header("authorization", b"Bearer b")
            .with_header("cookie", b"b=2");
        assert_eq!(r.header("authorization").unwrap(), b"Bearer a,Bearer b");
        assert_eq!(r.header("cookie").unwrap(), b"a=1; b=2");
        assert_eq!(r.header("x"), None);
        assert_eq!(r.header_reads, 3);
    }
}
