//! Which configuration is in force: a short hash of the accepted plugin
//! configuration, and under Istio the WasmPlugin's resource version that
//! istiod passes in the VM environment. Envoy's own view cannot tell: after
//! a refused push its `config_dump` shows the refused configuration as
//! current while the previous one goes on deciding. The filter logs the
//! version when it accepts a configuration and publishes it as gauges;
//! `jwt-policy check` prints the same hash for a file, so an operator can
//! compare what was applied with what decides.
//!
//! The hash is over the configuration in canonical JSON (object keys
//! sorted, no insignificant whitespace), so the JSON in `envoy.yaml`, the
//! `pluginConfig` YAML of a WasmPlugin and what istiod sends for it have one
//! version.

use serde_json::Value;

use crate::remote_jwks::store::{SharedStore, StoreError};

/// The VM environment variable istiod sets to the WasmPlugin's
/// `metadata.resourceVersion` (istio/istio `pilot/pkg/model/extensions.go`,
/// `WasmResourceVersionEnv`).
pub const RESOURCE_VERSION_ENV: &str = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION";

/// Hex digits of the version (48 bits: exact in a Prometheus float).
const HASH_BYTES: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigVersion {
    hash: [u8; HASH_BYTES],
    /// The WasmPlugin's resource version, when istiod passed one.
    pub resource_version: Option<String>,
}

impl ConfigVersion {
    /// The version of `config` (a JSON document; bytes that are not JSON
    /// are hashed as they are).
    pub fn of(config: &[u8], resource_version: Option<&str>) -> ConfigVersion {
        let canonical = match serde_json::from_slice::<Value>(config) {
            Ok(v) => {
                let mut out = Vec::with_capacity(config.len());
                write_canonical(&v, &mut out);
                out
            }
            Err(_) => config.to_vec(),
        };
        let digest = hmac_sha256::Hash::hash(&canonical);
        let mut hash = [0u8; HASH_BYTES];
        for (h, d) in hash.iter_mut().zip(digest.iter()) {
            *h = *d;
        }
        ConfigVersion {
            hash,
            resource_version: resource_version
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| crate::text::clip(r, 64)),
        }
    }

    /// The hash as 12 hex digits.
    pub fn hex(&self) -> String {
        self.hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The hash as a number (the `config.version` gauge).
    pub fn gauge(&self) -> u64 {
        self.hash
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }

    /// The resource version as a number, when it is one (Kubernetes
    /// resource versions are opaque, but etcd's are decimal).
    pub fn resource_gauge(&self) -> Option<u64> {
        self.resource_version.as_deref()?.parse().ok()
    }

    /// For the configure log line: `version 3f2a9c1b0d4e (gauge
    /// 69452388756814), WasmPlugin resourceVersion 81723`.
    pub fn describe(&self) -> String {
        let mut s = format!("version {} (gauge {})", self.hex(), self.gauge());
        if let Some(rv) = &self.resource_version {
            s.push_str(&format!(", WasmPlugin resourceVersion {rv}"));
        }
        s
    }
}

/// JSON with object keys sorted and no whitespace.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    // Serializing a scalar cannot fail.
    if let Ok(text) = serde_json::to_vec(v) {
        out.extend_from_slice(&text);
    }
}

/// Refused configurations of one plugin, kept in the shared store: the VM
/// that refuses a configuration is torn down with the stats it defined, so
/// it leaves the count where the VMs that go on deciding find it and
/// publish it (`config_refused` gauge) on their tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    pub count: u64,
    /// The hash of the last refused configuration.
    pub last: String,
    /// Its resource version (`-`: none).
    pub last_resource_version: String,
}

/// Tries to count a refusal this often when other VMs write in between.
const REFUSAL_ATTEMPTS: usize = 8;

impl Refusals {
    /// The shared-store key of `plugin`'s refusals.
    pub fn key(plugin: &str) -> String {
        format!("jwt_policy/plugin/{}/refused", stat_component(plugin))
    }

    fn encode(&self) -> Vec<u8> {
        format!(
            "{} {} {}",
            self.count, self.last, self.last_resource_version
        )
        .into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Refusals> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut it = text.split(' ');
        Some(Refusals {
            count: it.next()?.parse().ok()?,
            last: it.next()?.to_owned(),
            last_resource_version: it.next()?.to_owned(),
        })
    }

    /// What the store holds for `plugin` (none yet: zero).
    pub fn read(store: &dyn SharedStore, plugin: &str) -> Refusals {
        store
            .get(&Refusals::key(plugin))
            .and_then(|(bytes, _)| Refusals::decode(&bytes))
            .unwrap_or_default()
    }

    /// Counts the refusal of `version` (compare-and-swap against other
    /// VMs); returns the new count, `None` when the store would not take it.
    pub fn record(store: &dyn SharedStore, plugin: &str, version: &ConfigVersion) -> Option<u64> {
        let key = Refusals::key(plugin);
        for _ in 0..REFUSAL_ATTEMPTS {
            let (current, cas) = match store.get(&key) {
                Some((bytes, cas)) => (Refusals::decode(&bytes).unwrap_or_default(), Some(cas)),
                None => (Refusals::default(), None),
            };
            let next = Refusals {
                count: current.count.saturating_add(1),
                last: version.hex(),
                last_resource_version: version
                    .resource_version
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |r| r.replace(' ', "_")),
            };
            match store.set(&key, &next.encode(), cas) {
                Ok(()) => return Some(next.count),
                Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Host(_)) => return None,
            }
        }
        None
    }
}

/// A plugin name made safe for a stat name component: Istio names plugins
/// `<namespace>.<name>`, and dots separate stat name components.
pub fn stat_component(plugin: &str) -> String {
    let cleaned: String = plugin
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unnamed".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_ignores_formatting_and_key_order_but_not_values() {
        let a = ConfigVersion::of(br#"{"b": [1, {"y": 2, "x": "s"}], "a": true}"#, None);
        let b = ConfigVersion::of(b"{\"a\":true,\n  \"b\":[1,{\"x\":\"s\",\"y\":2}]}", None);
        assert_eq!(a, b);
        assert_eq!(a.hex().len(), 12);
        let c = ConfigVersion::of(br#"{"a": false, "b": [1, {"x": "s", "y": 2}]}"#, None);
        assert_ne!(a.hex(), c.hex());
        // Array order is meaning (rule order): it counts.
        let d = ConfigVersion::of(br#"{"a": true, "b": [{"x": "s", "y": 2}, 1]}"#, None);
        assert_ne!(a.hex(), d.hex());
    }

    #[test]
    fn gauge_and_hex_are_the_same_48_bits() {
        let v = ConfigVersion::of(b"{}", None);
        assert_eq!(format!("{:012x}", v.gauge()), v.hex());
        assert!(v.gauge() < 1 << 48);
        // SHA-256 of "{}" starts 44136fa355b3.
        assert_eq!(v.hex(), "44136fa355b3");
    }

    #[test]
    fn resource_versions_from_istio() {
        let v = ConfigVersion::of(b"{}", Some("81723"));
        assert_eq!(v.resource_gauge(), Some(81723));
        assert!(v.describe().ends_with(", WasmPlugin resourceVersion 81723"));
        assert_eq!(ConfigVersion::of(b"{}", Some("  ")).resource_version, None);
        assert_eq!(ConfigVersion::of(b"{}", Some("abc")).resource_gauge(), None);
    }

    #[test]
    fn refusals_are_counted_across_vms_in_the_shared_store() {
        use std::cell::RefCell;
        use std::collections::HashMap;

        #[derive(Default)]
        struct Store(
            RefCell<HashMap<String, (Vec<u8>, u32)>>,
            std::cell::Cell<bool>,
        );
        impl SharedStore for Store {
            fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
                self.0.borrow().get(key).cloned()
            }
            fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
                let mut data = self.0.borrow_mut();
                let have = data.get(key).map(|(_, c)| *c);
                // One racing write from another VM, once.
                if self.1.replace(false) {
                    return Err(StoreError::CasMismatch);
                }
                if let (Some(want), Some(have)) = (cas, have)
                    && want != have
                {
                    return Err(StoreError::CasMismatch);
                }
                data.insert(key.into(), (value.to_vec(), have.unwrap_or(0) + 1));
                Ok(())
            }
        }
        let store = Store::default();
        assert_eq!(Refusals::read(&store, "ns.p").count, 0);
        let bad = ConfigVersion::of(b"{\"bad\": 1}", Some("17"));
        assert_eq!(Refusals::record(&store, "ns.p", &bad), Some(1));
        store.1.set(true);
        assert_eq!(Refusals::record(&store, "ns.p", &bad), Some(2));
        let r = Refusals::read(&store, "ns.p");
        assert_eq!(
            (r.count, r.last.as_str(), r.last_resource_version.as_str()),
            (2, bad.hex().as_str(), "17")
        );
        // Other plugins keep their own count.
        assert_eq!(Refusals::read(&store, "ns.q").count, 0);
    }

    #[test]
    fn plugin_names_become_one_stat_component() {
        assert_eq!(
            stat_component("istio-system.jwt-policy"),
            "istio-system_jwt-policy"
        );
        assert_eq!(stat_component(""), "unnamed");
    }
}
