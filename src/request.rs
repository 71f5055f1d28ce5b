//! A request as the policy sees it: every header entry as the host received
//! it (pseudo-headers included, repeated headers as separate entries or
//! joined, exactly as the host keeps them), and the host's route name.
//!
//! The filter reads the whole header map with one hostcall, in the
//! proxy-wasm pairs encoding, and the core indexes that buffer without
//! copying it ([`RequestHead::from_pairs_buffer`]). Reading every entry is
//! what makes "one token per request" and "managed headers cannot be
//! spoofed" hold: a second `x-jwt` line or an `x_client_id` twin is seen,
//! not only the first value of a name. Values are raw bytes: clients control
//! them and they need not be UTF-8.

/// One header entry: byte ranges of name and value in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    name: (usize, usize),
    value: (usize, usize),
}

/// Every header entry of a request, in the order the host gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    buf: Vec<u8>,
    entries: Vec<Entry>,
    /// Where the pseudo-headers every decision reads are, found once.
    pseudo: Pseudo,
}

/// The first `:method`, `:path` and `:authority` entries (indices into
/// `entries`): read on every request, so not searched for each time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pseudo {
    method: Option<usize>,
    path: Option<usize>,
    authority: Option<usize>,
}

/// Encodes header entries in the proxy-wasm pairs encoding (what a host
/// hands over; the inverse of [`RequestHead::from_pairs_buffer`]).
pub fn encode_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = len32(pairs.len()).to_vec();
    for (n, v) in pairs {
        out.extend_from_slice(&len32(n.as_ref().len()));
        out.extend_from_slice(&len32(v.as_ref().len()));
    }
    for (n, v) in pairs {
        out.extend_from_slice(n.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

fn read_u32(buf: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(bytes)).ok()
}

impl RequestHead {
    /// Indexes a header map in the proxy-wasm pairs encoding: a `u32` count,
    /// then a `(name length, value length)` `u32` pair per entry, then each
    /// name and value followed by a NUL (little-endian). `None` when the
    /// buffer does not hold what it says.
    pub fn from_pairs_buffer(buf: Vec<u8>) -> Option<RequestHead> {
        if buf.is_empty() {
            return Some(RequestHead::default());
        }
        let count = read_u32(&buf, 0)?;
        let mut data = count.checked_mul(8)?.checked_add(4)?;
        if data > buf.len() {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let sizes = i.checked_mul(8)?.checked_add(4)?;
            let name_len = read_u32(&buf, sizes)?;
            let value_len = read_u32(&buf, sizes.checked_add(4)?)?;
            let name = (data, name_len);
            let value_start = data.checked_add(name_len)?.checked_add(1)?;
            let value = (value_start, value_len);
            data = value_start.checked_add(value_len)?.checked_add(1)?;
            if data > buf.len() {
                return None;
            }
            entries.push(Entry { name, value });
        }
        Some(RequestHead::indexed(buf, entries))
    }

    fn indexed(buf: Vec<u8>, entries: Vec<Entry>) -> RequestHead {
        let mut head = RequestHead {
            buf,
            entries,
            pseudo: Pseudo::default(),
        };
        let mut pseudo = Pseudo::default();
        for (i, (name, _)) in head.iter().enumerate() {
            let slot = match name {
                b":method" => &mut pseudo.method,
                b":path" => &mut pseudo.path,
                b":authority" => &mut pseudo.authority,
                _ => continue,
            };
            slot.get_or_insert(i);
        }
        head.pseudo = pseudo;
        head
    }

    /// The value of entry `i`.
    fn value_at(&self, i: Option<usize>) -> Option<&[u8]> {
        self.entries.get(i?).map(|e| self.slice(e.value))
    }

    /// Builds a head from `(name, value)` entries (tools and tests). Names
    /// are taken as given; hosts hand them over in lower case.
    pub fn from_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> RequestHead {
        let mut buf = Vec::new();
        let mut entries = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            let n = buf.len();
            buf.extend_from_slice(name);
            buf.push(0);
            let v = buf.len();
            buf.extend_from_slice(value);
            buf.push(0);
            entries.push(Entry {
                name: (n, name.len()),
                value: (v, value.len()),
            });
        }
        RequestHead::indexed(buf, entries)
    }

    fn slice(&self, (start, len): (usize, usize)) -> &[u8] {
        start
            .checked_add(len)
            .and_then(|end| self.buf.get(start..end))
            .unwrap_or_default()
    }

    /// Every `(name, value)` entry, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|e| (self.slice(e.name), self.slice(e.value)))
    }

    /// Every value of header `name` (lower case), in order.
    pub fn values<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The first value of header `name`.
    pub fn first<'a>(&'a self, name: &'a [u8]) -> Option<&'a [u8]> {
        self.values(name).next()
    }

    /// `:method` (empty when absent).
    pub fn method(&self) -> &[u8] {
        self.value_at(self.pseudo.method).unwrap_or_default()
    }

    /// `:path`, the request target with its query (empty when absent).
    pub fn target(&self) -> &[u8] {
        self.value_at(self.pseudo.path).unwrap_or_default()
    }

    /// `:authority` (empty when absent).
    pub fn authority(&self) -> &[u8] {
        self.value_at(self.pseudo.authority).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What one decision looks at.
#[derive(Debug, Clone, Copy)]
pub struct Request<'r> {
    pub head: &'r RequestHead,
    /// The host's route name (Envoy: `xds.route_name`); read by the host
    /// only when some rule matches on it.
    pub route: Option<&'r [u8]>,
}

/// A request held in memory: what `jwt-policy explain`, the fuzz targets
/// and the unit tests decide. Each header is its own entry, as a client
/// sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: Vec<u8>,
    pub path: Vec<u8>,
    pub authority: Vec<u8>,
    pub route: Option<Vec<u8>>,
    /// Lower-case names, in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Default for RecordedRequest {
    fn default() -> Self {
        RecordedRequest {
            method: b"GET".to_vec(),
            path: b"/".to_vec(),
            authority: b"api.example.com".to_vec(),
            route: None,
            headers: Vec::new(),
        }
    }
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

    /// Adds a header entry (the name is lower-cased).
    pub fn with_header(mut self, name: &str, value: &[u8]) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_vec()));
        self
    }

    pub fn with_route(mut self, route: &str) -> Self {
        self.route = Some(route.as_bytes().to_vec());
        self
    }

    pub fn with_authority(mut self, authority: &str) -> Self {
        self.authority = authority.as_bytes().to_vec();
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        let value = format!("Bearer {token}");
        self.with_header("authorization", value.as_bytes())
    }

    /// The head a host would hand over: pseudo-headers first, then the
    /// headers in order.
    pub fn head(&self) -> RequestHead {
        let mut pairs: Vec<(&[u8], &[u8])> = vec![
            (b":method", &self.method),
            (b":path", &self.path),
            (b":authority", &self.authority),
        ];
        pairs.extend(
            self.headers
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_slice())),
        );
        RequestHead::from_pairs(&pairs)
    }

    /// The request view over `head` (built by [`RecordedRequest::head`]).
    pub fn view<'a>(&'a self, head: &'a RequestHead) -> Request<'a> {
        Request {
            head,
            route: self.route.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
        encode_pairs(pairs)
    }

    /// The pseudo-headers found at indexing are what a search finds: the
    /// first of each name, wherever it is, none when absent.
    #[test]
    fn pseudo_headers_are_the_first_of_their_name() {
        let heads = [
            RequestHead::from_pairs(&[(":authority", "a"), (":path", "/p"), (":method", "GET")]),
            RequestHead::from_pairs(&[
                ("x", "1"),
                (":method", "PUT"),
                (":method", "GET"),
                (":path", "/1"),
                (":path", "/2"),
            ]),
            RequestHead::from_pairs(&[("authority", "no"), ("path", "no")]),
            RequestHead::from_pairs::<&str, &str>(&[]),
            RequestHead::default(),
        ];
        for h in &heads {
            assert_eq!(h.method(), h.first(b":method").unwrap_or_default());
            assert_eq!(h.target(), h.first(b":path").unwrap_or_default());
            assert_eq!(h.authority(), h.first(b":authority").unwrap_or_default());
            let again = h.clone_reindexed();
            assert_eq!((again.method(), again.target()), (h.method(), h.target()));
        }
        assert_eq!(heads[1].method(), b"PUT");
        assert_eq!(heads[1].target(), b"/1");
        assert_eq!(heads[2].target(), b"");
    }

    #[test]
    fn reads_the_pairs_encoding() {
        let pairs = [
            (":path", "/a?b"),
            (":method", "GET"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x-empty", ""),
        ];
        let head = RequestHead::from_pairs_buffer(encode(&pairs)).unwrap();
        assert_eq!(head.len(), 5);
        assert_eq!(head.target(), b"/a?b");
        assert_eq!(head.method(), b"GET");
        assert_eq!(head.authority(), b"");
        assert_eq!(
            head.values(b"cookie").collect::<Vec<_>>(),
            [b"a=1".as_slice(), b"b=2"]
        );
        assert_eq!(head.first(b"x-empty"), Some(b"".as_slice()));
        assert_eq!(head, RequestHead::from_pairs(&pairs).clone_reindexed());
        assert_eq!(RequestHead::from_pairs_buffer(Vec::new()).unwrap().len(), 0);
    }

    #[test]
    fn refuses_broken_buffers() {
        let good = encode(&[("a", "b"), ("c", "d")]);
        for cut in 1..good.len() {
            assert!(
                RequestHead::from_pairs_buffer(good[..cut].to_vec()).is_none(),
                "cut at {cut}"
            );
        }
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(RequestHead::from_pairs_buffer(huge).is_none());
        let mut long = good;
        long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(RequestHead::from_pairs_buffer(long).is_none());
    }

    impl RequestHead {
        /// The same entries as a host buffer (for comparing heads).
        fn clone_reindexed(&self) -> RequestHead {
            let pairs: Vec<(&[u8], &[u8])> = self.iter().collect();
            RequestHead::from_pairs_buffer(encode_pairs(&pairs)).unwrap()
        }
    }

    #[test]
    fn recorded_requests_keep_each_line() {
        let r = RecordedRequest::get("/")
            .with_header("Authorization", b"Bearer a")
            .with_header("cookie", b"a=1")
            .with_header("authorization", b"Bearer b");
        let head = r.head();
        assert_eq!(head.values(b"authorization").count(), 2);
        assert_eq!(head.method(), b"GET");
        assert_eq!(head.authority(), b"api.example.com");
    }
}
