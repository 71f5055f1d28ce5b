use super::*;
use crate::algorithm::Algorithm;
use crate::jwks::tests::{ec_jwk, ed_jwk, rsa_jwk};
use serde_json::{Value, json};

/// The configuration of the core issue, with test keys.
pub fn example() -> Value {
    json!({
      "providers": {
        "cognito": {
          "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot",
          "audiences": ["14aq5ll5b1it6f62uefem6aqhn"],
          "token_use": "access",
          "algorithms": ["RS256"],
          "local_jwks": { "keys": [ rsa_jwk("k1") ] },
          "clock_skew_s": 60,
          "require_exp": true,
          "from_headers": [{ "name": "authorization", "prefix": "Bearer " }],
          "from_params": ["access_token"],
          "from_cookies": ["session_token"],
          "claims": [{ "claim": "client_id", "one_of": ["14aq5ll5b1it6f62uefem6aqhn"], "required": true }],
          "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }],
          "forward_token": true
        }
      },
      "rules": [
        { "match": { "path": "/healthz" }, "allow_anonymous": true },
        { "match": { "prefix": "/api/v1/order", "methods": ["POST"] },
          "requires": { "provider": "cognito", "scopes": ["order/post.order"] } },
        { "match": { "prefix": "/api/v1/order", "methods": ["GET"] },
          "requires": { "provider": "cognito", "scopes": ["order/get.order", "order/admin"] } },
        { "match": { "route": "admin_route" },
          "requires": { "provider": "cognito", "all_scopes": ["order/admin", "order/audit"] } }
      ],
      "unmatched": "deny",
      "route_check": true
    })
}

fn compile(v: &Value) -> Result<Policy, ConfigErrors> {
    Policy::from_json(v.to_string().as_bytes())
}

/// The first problem of a refused configuration.
fn refused(v: &Value) -> ConfigError {
    compile(v).unwrap_err().first().clone()
}

#[test]
fn compiles_the_example() {
    let p = compile(&example()).unwrap();
    assert_eq!(p.providers.len(), 1);
    assert_eq!(p.rules.len(), 4);
    assert_eq!(p.rules[3].name, "3");
    assert!(p.uses_route_names && p.route_check);
    assert_eq!(p.managed_headers, ["x-client-id", "x-jwt-policy-decision"]);
    assert_eq!(p.realm, "api");
    let c = &p.providers[0];
    assert_eq!(c.locations.len(), 3);
    assert!(c.algorithms.contains(Algorithm::RS256));
    assert!(!c.algorithms.contains(Algorithm::ES256));
    let Access::Token(req) = &p.rules[2].access else {
        panic!()
    };
    assert_eq!(
        req.scope_hint.as_deref(),
        Some("order/get.order order/admin")
    );
}

#[test]
fn defaults() {
    let p = compile(&json!({
        "providers": {"p": {"issuer": "i", "local_jwks": {"keys": [ec_jwk("e")]}}},
        "rules": [{"match": {}, "requires": {}}]
    }))
    .unwrap();
    let prov = &p.providers[0];
    assert_eq!(prov.locations, [TokenLocation::bearer()]);
    assert_eq!(prov.clock_skew_s, 60);
    assert!(prov.require_exp && prov.forward_token);
    assert_eq!(prov.algorithms.iter().count(), 9);
    assert_eq!(p.unmatched, Unmatched::Deny);
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(p.token_cache, CacheSettings::default());
    assert!(!p.uses_route_names && !p.route_check);
    assert_eq!(p.paths, PathRules::DEFAULT);
}

#[test]
fn local_jwks_as_a_string() {
    let mut c = example();
    c["providers"]["cognito"]["local_jwks"] = json!(json!({"keys": [rsa_jwk("a")]}).to_string());
    assert!(compile(&c).is_ok());
}

#[test]
fn names_the_field_of_type_and_unknown_field_errors() {
    let mut c = example();
    c["providers"]["cognito"]["audience"] = json!("x");
    let e = refused(&c);
    assert_eq!(e.field, "providers.cognito.audience");
    assert!(e.message.contains("unknown field"), "{e}");

    let mut c = example();
    c["providers"]["cognito"]["clock_skew_s"] = json!(-5);
    assert_eq!(refused(&c).field, "providers.cognito.clock_skew_s");

    let mut c = example();
    c["rules"][1]["match"]["methods"] = json!("POST");
    assert_eq!(refused(&c).field, "rules[1].match.methods");

    let mut c = example();
    c["unmatched"] = json!("maybe");
    assert_eq!(refused(&c).field, "unmatched");

    let e = Policy::from_json(b"{not json").unwrap_err();
    assert!(e.first().message.contains("line 1"), "{e}");
    assert!(Policy::from_json(b"{\"providers\":{}} x").is_err());
}

#[test]
fn refuses_bad_values_naming_the_field() {
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "rules[1].requires.provider",
            Box::new(|c| c["rules"][1]["requires"]["provider"] = json!("nope")),
        ),
        (
            "providers.cognito.local_jwks.keys[0].n",
            Box::new(|c| c["providers"]["cognito"]["local_jwks"]["keys"][0]["n"] = json!("AQAB")),
        ),
        (
            "providers.cognito.local_jwks.keys",
            Box::new(|c| c["providers"]["cognito"]["local_jwks"] = json!({"keys": []})),
        ),
        (
            "providers.cognito.local_jwks",
            Box::new(|c| c["providers"]["cognito"]["local_jwks"] = json!("{nope")),
        ),
        (
            "providers.cognito.algorithms[0]",
            Box::new(|c| c["providers"]["cognito"]["algorithms"] = json!(["none"])),
        ),
        (
            "providers.cognito.algorithms[1]",
            Box::new(|c| c["providers"]["cognito"]["algorithms"] = json!(["RS256", "XS1"])),
        ),
        (
            "providers.cognito.shared_secret_base64",
            Box::new(|c| c["providers"]["cognito"]["algorithms"] = json!(["HS256"])),
        ),
        (
            "providers.cognito.issuer",
            Box::new(|c| c["providers"]["cognito"]["issuer"] = json!("")),
        ),
        (
            "providers.cognito.audiences[0]",
            Box::new(|c| c["providers"]["cognito"]["audiences"] = json!([""])),
        ),
        (
            "providers.cognito.claims[0].one_of",
            Box::new(|c| c["providers"]["cognito"]["claims"][0]["one_of"] = json!([])),
        ),
        (
            "providers.cognito.claims[0].one_of[0]",
            Box::new(|c| c["providers"]["cognito"]["claims"][0]["one_of"] = json!([{"a": 1}])),
        ),
        (
            "providers.cognito.claims_to_headers[0].header",
            Box::new(|c| {
                c["providers"]["cognito"]["claims_to_headers"][0]["header"] = json!("bad header")
            }),
        ),
        (
            "providers.cognito.claims_to_headers[0].header",
            Box::new(|c| {
                c["providers"]["cognito"]["claims_to_headers"][0]["header"] = json!("Authorization")
            }),
        ),
        (
            "providers.cognito.from_headers[0].name",
            Box::new(|c| c["providers"]["cognito"]["from_headers"][0]["name"] = json!("")),
        ),
        (
            "providers.cognito.from_cookies[0]",
            Box::new(|c| c["providers"]["cognito"]["from_cookies"] = json!(["a b"])),
        ),
        (
            "providers.cognito.clock_skew_s",
            Box::new(|c| c["providers"]["cognito"]["clock_skew_s"] = json!(100_000)),
        ),
        (
            "providers.cognito.local_jwks.keys",
            Box::new(|c| {
                // Bootstrap keys are checked like local ones.
                c["providers"]["cognito"]["remote_jwks"] =
                    json!({"cluster": "c", "uri": "https://h/j"});
                c["providers"]["cognito"]["local_jwks"] = json!({"keys": []});
            }),
        ),
        (
            "providers.cognito.claims_to_filter_state[0].name",
            Box::new(|c| {
                c["providers"]["cognito"]["claims_to_filter_state"] =
                    json!([{"claim": "sub", "name": "a.b"}])
            }),
        ),
        (
            "providers.cognito.claims_to_filter_state[1].name",
            Box::new(|c| {
                c["providers"]["cognito"]["claims_to_filter_state"] =
                    json!([{"claim": "sub", "name": "s"}, {"claim": "client_id", "name": "s"}])
            }),
        ),
        (
            "providers.cognito.claims[0].one_of",
            Box::new(|c| {
                c["providers"]["cognito"]["claims"] = json!([{"claim": "sub", "required": false}])
            }),
        ),
        (
            "rules[1].match.path_template",
            Box::new(|c| c["rules"][1]["match"]["path_template"] = json!("/orders/{id}")),
        ),
        (
            "rules[0].match.path_template",
            Box::new(|c| {
                c["rules"][0]["match"] = json!({"path_template": "/orders/{id+}/x"});
            }),
        ),
        (
            "rules[0].match.path_template",
            Box::new(|c| c["rules"][0]["match"] = json!({"path_template": "/a{id}"})),
        ),
        (
            "rules[0].match.hosts",
            Box::new(|c| c["rules"][0]["match"]["hosts"] = json!([])),
        ),
        (
            "rules[0].match.hosts[1]",
            Box::new(|c| c["rules"][0]["match"]["hosts"] = json!(["a.example", "a*.example"])),
        ),
        (
            "rules[0].allow_missing",
            Box::new(|c| c["rules"][0]["allow_missing"] = json!(true)),
        ),
        (
            "rules[1].requires.providers",
            Box::new(|c| c["rules"][1]["requires"]["providers"] = json!(["cognito"])),
        ),
        (
            "rules[1].requires.providers[1]",
            Box::new(|c| {
                c["rules"][1]["requires"] = json!({"providers": ["cognito", "nope"]});
            }),
        ),
        (
            "rules[1].requires.providers",
            Box::new(|c| {
                c["rules"][1]["requires"] = json!({"providers": ["cognito", "cognito"]});
            }),
        ),
        (
            "rules[1].requires.providers",
            Box::new(|c| {
                c["providers"]["twin"] = c["providers"]["cognito"].clone();
                c["rules"][1]["requires"] = json!({"providers": ["cognito", "twin"]});
                for r in 2..4 {
                    c["rules"][r]["requires"]["provider"] = json!("cognito");
                }
            }),
        ),
        (
            "rules[0].match.path",
            Box::new(|c| c["rules"][0]["match"]["path"] = json!("healthz")),
        ),
        (
            "rules[1].match.prefix",
            Box::new(|c| c["rules"][1]["match"]["prefix"] = json!("/a?b")),
        ),
        (
            "rules[1].match.methods[0]",
            Box::new(|c| c["rules"][1]["match"]["methods"] = json!(["PO ST"])),
        ),
        (
            "rules[0].requires",
            Box::new(|c| c["rules"][0]["requires"] = json!({})),
        ),
        (
            "rules[1].requires",
            Box::new(|c| {
                c["rules"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("requires")
                    .map(|_| ())
                    .unwrap()
            }),
        ),
        (
            "rules[1].requires.scopes[0]",
            Box::new(|c| c["rules"][1]["requires"]["scopes"] = json!(["a b"])),
        ),
        (
            "rules[1].name",
            Box::new(|c| {
                c["rules"][0]["name"] = json!("x");
                c["rules"][1]["name"] = json!("x");
            }),
        ),
        ("realm", Box::new(|c| c["realm"] = json!("a\"b"))),
        (
            "limits.max_token_bytes",
            Box::new(|c| c["limits"] = json!({"max_token_bytes": 10})),
        ),
        (
            "token_cache.max_entries",
            Box::new(|c| c["token_cache"] = json!({"max_entries": 10_000_000})),
        ),
        (
            "providers.bad name",
            Box::new(|c| c["providers"]["bad name"] = c["providers"]["cognito"].clone()),
        ),
    ];
    for (field, mutate) in cases {
        let mut c = example();
        mutate(&mut c);
        let e = refused(&c);
        assert_eq!(e.field, field, "{e}");
    }
}

#[test]
fn rule_paths_are_put_in_normal_form() {
    let rules = |p: Value, extra: Value| {
        let mut c = example();
        c["rules"] = json!([{ "match": p, "allow_anonymous": true }]);
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        compile(&c)
    };
    let p = rules(json!({"prefix": "/%7Eadmin"}), json!({})).unwrap();
    assert_eq!(p.rules[0].matcher.prefix.as_deref(), Some(&b"/~admin"[..]));
    let p = rules(json!({"path": "/api/./internal//x"}), json!({})).unwrap();
    assert_eq!(
        p.rules[0].matcher.path.as_deref(),
        Some(&b"/api/internal/x"[..])
    );
    for ambiguous in ["/a%2fb", "/a%2Fb", "/public/..;/x", "/a\\b"] {
        let e = rules(json!({"prefix": ambiguous}), json!({})).unwrap_err();
        assert_eq!(e.first().field, "rules[0].match.prefix", "{ambiguous}");
        assert!(e.first().message.contains("can never match"), "{e}");
    }
    let allow = json!({"path_normalization": {"ambiguous": "allow"}});
    let p = rules(json!({"prefix": "/a%2fb"}), allow).unwrap();
    assert_eq!(p.rules[0].matcher.prefix.as_deref(), Some(&b"/a%2Fb"[..]));
    let keep = json!({"path_normalization": {"merge_slashes": false, "non_normal": "reject"}});
    let p = rules(json!({"path": "//a"}), keep).unwrap();
    assert_eq!(p.rules[0].matcher.path.as_deref(), Some(&b"//a"[..]));
    assert_eq!(
        p.paths,
        PathRules {
            rewrite: false,
            merge_slashes: false,
            allow_ambiguous: false
        }
    );
}

#[test]
fn route_rules_need_the_route_check() {
    let mut c = example();
    c.as_object_mut().unwrap().remove("route_check");
    let e = refused(&c);
    assert_eq!(e.field, "rules[3].match.route");
    assert!(e.message.contains("route_check"), "{e}");
    c["route_check"] = json!(false);
    assert_eq!(refused(&c).field, "rules[3].match.route");
}

#[test]
fn provider_may_be_implied_only_when_unique() {
    let mut c = example();
    c["rules"][1]["requires"]
        .as_object_mut()
        .unwrap()
        .remove("provider");
    assert!(compile(&c).is_ok());
    c["providers"]["other"] = json!({"issuer": "o", "local_jwks": {"keys": [ed_jwk("d")]}});
    assert_eq!(refused(&c).field, "rules[1].requires.provider");
}

#[test]
fn hmac_needs_a_long_enough_secret() {
    let secret32 = crate::b64::encode(&[7u8; 32]);
    let hs = |algs: Value, secret: &str| {
        json!({"providers": {"p": {"issuer": "i", "algorithms": algs, "shared_secret_base64": secret}},
               "rules": [{"match": {}, "requires": {}}]})
    };
    assert!(compile(&hs(json!(["HS256"]), &secret32)).is_ok());
    // base64url output of 32 bytes is also valid standard base64 here
    assert_eq!(
        refused(&hs(json!(["HS512"]), &secret32)).field,
        "providers.p.shared_secret_base64"
    );
    assert_eq!(
        refused(&hs(json!(["HS256"]), "c2hvcnQ=")).field,
        "providers.p.shared_secret_base64"
    );
    assert_eq!(
        refused(&hs(json!(["HS256", "RS256"]), &secret32)).field,
        "providers.p.local_jwks"
    );
    let mut c = example();
    c["providers"]["cognito"]["shared_secret_base64"] = json!(secret32);
    assert_eq!(refused(&c).field, "providers.cognito.shared_secret_base64");
}

#[test]
fn remote_jwks_is_checked() {
    let with = |r: Value| {
        let mut c = example();
        let p = c["providers"]["cognito"].as_object_mut().unwrap();
        p.remove("local_jwks");
        p.insert("remote_jwks".into(), r);
        c
    };
    let p = compile(&with(json!({
        "cluster": "cognito_idp",
        "uri": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot/.well-known/jwks.json"
    })))
    .unwrap();
    let KeySource::Remote(r) = &p.providers[0].keys else {
        panic!()
    };
    assert_eq!(r.authority, "cognito-idp.us-east-1.amazonaws.com");
    assert_eq!(r.path, "/us-east-1_pO0zNXTot/.well-known/jwks.json");
    assert_eq!(
        (
            r.timeout_ms,
            r.cache_ttl_s,
            r.max_stale_s,
            r.refetch_cooldown_s
        ),
        (5000, 3600, 86400, 30)
    );

    for (r, field) in [
        (
            json!({"uri": "https://h/j"}),
            "providers.cognito.remote_jwks.cluster",
        ),
        (
            json!({"cluster": "", "uri": "https://h/j"}),
            "providers.cognito.remote_jwks.cluster",
        ),
        (
            json!({"cluster": "c", "uri": "ftp://h/j"}),
            "providers.cognito.remote_jwks.uri",
        ),
        (
            json!({"cluster": "c", "uri": "https:///j"}),
            "providers.cognito.remote_jwks.uri",
        ),
        (
            json!({"cluster": "c", "uri": "https://u@h/j"}),
            "providers.cognito.remote_jwks.uri",
        ),
        (
            json!({"cluster": "c", "uri": "https://h:0/j"}),
            "providers.cognito.remote_jwks.uri",
        ),
        (
            json!({"cluster": "c", "uri": "https://h/j k"}),
            "providers.cognito.remote_jwks.uri",
        ),
        (
            json!({"cluster": "c", "uri": "https://h/j", "timeout_ms": 0}),
            "providers.cognito.remote_jwks.timeout_ms",
        ),
        (
            json!({"cluster": "c", "uri": "https://h/j", "cache_ttl_s": 0}),
            "providers.cognito.remote_jwks.cache_ttl_s",
        ),
        (
            json!({"cluster": "c", "uri": "https://h/j", "max_stale_s": -1}),
            "providers.cognito.remote_jwks.max_stale_s",
        ),
        (
            json!({"cluster": "c", "uri": "https://h/j", "refetch_cooldown_s": 0}),
            "providers.cognito.remote_jwks.refetch_cooldown_s",
        ),
        (
            json!({"cluster": "c", "uri": "https://h/j", "ttl": 5}),
            "providers.cognito.remote_jwks.ttl",
        ),
    ] {
        assert_eq!(refused(&with(r.clone())).field, field, "{r}");
    }
}

#[test]
fn splits_uris() {
    let s = |u: &str| split_uri(u);
    assert_eq!(
        s("https://h:8443/a/b?c=d"),
        Some(("h:8443".into(), "/a/b?c=d".into()))
    );
    assert_eq!(s("http://h"), Some(("h".into(), "/".into())));
    assert_eq!(s("http://h?x"), Some(("h".into(), "/?x".into())));
    assert_eq!(
        s("http://[::1]:8080/j"),
        Some(("[::1]:8080".into(), "/j".into()))
    );
    assert_eq!(s("https://h/#f"), None);
    assert_eq!(s("h/j"), None);
}

/// Found by the `config` fuzz target: the decision header escaped the
/// checks claim headers get, so `"decision_header": "authorization"`
/// (or `content-length`) compiled, and report mode then replaced that
/// header of every request with the decision.
#[test]
fn decision_header_is_not_a_reserved_or_token_header() {
    for header in ["authorization", "Content-Length", "cookie", "host", "x-jwt"] {
        let mut c = example();
        c["mode"] = json!("report");
        c["decision_header"] = json!(header);
        c["providers"]["cognito"]["from_headers"] =
            json!([{ "name": "authorization", "prefix": "Bearer " }, { "name": "X-JWT" }]);
        assert_eq!(refused(&c).field, "decision_header", "{header}");
    }
    let mut c = example();
    c["decision_header"] = json!("X-Would-Deny");
    assert_eq!(compile(&c).unwrap().decision_header, "x-would-deny");
}

#[test]
fn report_mode_manages_the_decision_header() {
    let mut c = example();
    c["rules"][1]["mode"] = json!("report");
    let p = compile(&c).unwrap();
    assert_eq!(p.managed_headers, ["x-client-id", "x-jwt-policy-decision"]);
    assert_eq!(p.mode_for(Some(1)), Mode::Report);
    assert_eq!(p.mode_for(Some(2)), Mode::Enforce);
    assert_eq!(p.mode_for(None), Mode::Enforce);
}

#[test]
fn every_problem_is_named_at_once() {
    let mut c = example();
    c["providers"]["cognito"]["local_jwks"] = json!({"keys": []});
    c["providers"]["cognito"]["clock_skew_s"] = json!(100_000);
    c["rules"][1]["requires"]["provider"] = json!("okta");
    c["rules"][2]["match"]["methods"] = json!(["GE T"]);
    c["realm"] = json!("a\"b");
    c["limits"] = json!({"max_json_depth": 1});
    let errors = compile(&c).unwrap_err();
    let fields: Vec<&str> = errors.problems().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "limits.max_json_depth",
            "providers.cognito.local_jwks.keys",
            "providers.cognito.clock_skew_s",
            "rules[1].requires.provider",
            "rules[2].match.methods[0]",
            "realm"
        ],
        "{errors}"
    );
    let text = errors.to_string();
    assert!(
        text.starts_with("6 problems: limits.max_json_depth: must be between 2 and 64; "),
        "{text}"
    );
    // One problem reads as it always did.
    let mut c = example();
    c["realm"] = json!("");
    assert_eq!(
        compile(&c).unwrap_err().to_string(),
        "realm: must be printable ASCII without quotes or backslashes"
    );
}
