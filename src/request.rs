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
    /// The first value of a request header; `name` is lower-case.
    fn header(&mut self, name: &str) -> Option<Vec<u8>>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::RequestView;

    /// An in-memory request for unit tests; counts header reads.
    #[derive(Debug, Clone, Default)]
    pub struct FakeRequest {
        pub method: Vec<u8>,
        pub path: Vec<u8>,
        pub route: Option<Vec<u8>>,
        pub headers: Vec<(String, Vec<u8>)>,
        pub header_reads: usize,
    }

    impl FakeRequest {
        pub fn new(method: &str, path: &str) -> Self {
            FakeRequest {
                method: method.as_bytes().to_vec(),
                path: path.as_bytes().to_vec(),
                ..Default::default()
            }
        }

        pub fn get(path: &str) -> Self {
            Self::new("GET", path)
        }

        pub fn with_header(mut self, name: &str, value: &[u8]) -> Self {
            self.headers.push((name.to_owned(), value.to_vec()));
            self
        }

        pub fn with_route(mut self, route: &str) -> Self {
            self.route = Some(route.as_bytes().to_vec());
            self
        }

        pub fn bearer(self, token: &str) -> Self {
            let value = format!("Bearer {token}");
            self.with_header("authorization", value.as_bytes())
        }
    }

    impl RequestView for FakeRequest {
        fn method(&mut self) -> Option<Vec<u8>> {
            Some(self.method.clone())
        }
        fn path(&mut self) -> Option<Vec<u8>> {
            Some(self.path.clone())
        }
        fn route_name(&mut self) -> Option<Vec<u8>> {
            self.route.clone()
        }
        fn header(&mut self, name: &str) -> Option<Vec<u8>> {
            self.header_reads += 1;
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        }
    }
}
