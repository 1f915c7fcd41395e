//! Gateway API keys end to end: issue, store the digest, authenticate (AUTH-APIKEY).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use gatehouse_identity::{IssuedApiKey, KeyDigest, StoredKey};
use secrecy::ExposeSecret;

use crate::support::{
    BrokenKeys, Case, MemoryKeys, PEPPER, authenticator, bearer, check, client_peer, headers,
    settings,
};

const CONFIG: &str = "[api_keys]\npepper_env = \"PEPPER\"";

fn stored(issued: &IssuedApiKey, user: &str) -> StoredKey {
    StoredKey {
        digest: issued.digest.clone(),
        user: user.to_owned(),
        groups: vec!["eng".into(), "admins".into(), "eng".into()],
        teams: vec!["payments".into()],
        expires: Some(SystemTime::now() + Duration::from_secs(3600)),
        revoked: false,
    }
}

fn secret_of(issued: &IssuedApiKey) -> String {
    let key = issued.key.expose_secret();
    key.split_at(key.len() - 43).1.to_owned()
}

#[tokio::test]
async fn api_keys_round_trip_and_every_rejection_looks_the_same() {
    let keys = MemoryKeys::default();
    let auth = authenticator(CONFIG, keys.clone());
    let pepper = auth.settings().api_keys().unwrap().pepper();
    let issue = || IssuedApiKey::generate(pepper).unwrap();
    let [valid, revoked, expired, never_expires, unknown] = [(); 5].map(|()| issue());
    keys.insert(valid.id.clone(), stored(&valid, "alice"));
    keys.insert(
        revoked.id.clone(),
        StoredKey {
            revoked: true,
            ..stored(&revoked, "bob")
        },
    );
    keys.insert(
        expired.id.clone(),
        StoredKey {
            expires: Some(SystemTime::now() - Duration::from_secs(1)),
            ..stored(&expired, "carol")
        },
    );
    keys.insert(
        never_expires.id.clone(),
        StoredKey {
            expires: None,
            ..stored(&never_expires, "dave")
        },
    );
    let valid_key = valid.key.expose_secret();
    // The valid key's id with another key's secret, and with its own secret one character off.
    let wrong_secret = format!("gh_{}_{}", valid.id, secret_of(&revoked));
    let mut near_miss = valid_key.to_owned();
    let last = near_miss.pop().unwrap();
    near_miss.push(if last == 'A' { 'B' } else { 'A' });
    let reject =
        |id: &dyn std::fmt::Display, reason: &str| format!("401 api key {id} rejected: {reason}");
    let accept = |user: &str, issued: &IssuedApiKey| {
        format!(
            "ok api_key user={user} groups=[admins,eng] teams=[payments] credential=api_key:{}",
            issued.id
        )
    };
    let malformed = "401 malformed credential: api key";

    let cases = vec![
        Case::bearer("valid", valid_key, accept("alice", &valid)),
        Case::new(
            "lowercase scheme",
            headers(&[("authorization", &format!("bearer {valid_key}"))]),
            "192.0.2.10:1",
            accept("alice", &valid),
        ),
        Case::bearer(
            "never expires",
            never_expires.key.expose_secret(),
            accept("dave", &never_expires),
        ),
        Case::bearer(
            "revoked",
            revoked.key.expose_secret(),
            reject(&revoked.id, "revoked"),
        ),
        Case::bearer(
            "expired",
            expired.key.expose_secret(),
            reject(&expired.id, "expired"),
        ),
        Case::bearer(
            "unknown",
            unknown.key.expose_secret(),
            reject(&unknown.id, "unknown key"),
        ),
        Case::bearer(
            "wrong secret",
            &wrong_secret,
            reject(&valid.id, "secret does not match"),
        ),
        Case::bearer(
            "near miss",
            &near_miss,
            reject(&valid.id, "secret does not match"),
        ),
        Case::bearer("short secret", &format!("gh_{}_abc", valid.id), malformed),
        Case::bearer(
            "bad id",
            &format!("gh_XYZ_{}", secret_of(&valid)),
            malformed,
        ),
        Case::bearer("bare prefix", "gh_", malformed),
        Case::new(
            "two authorization headers",
            headers(&[
                ("authorization", &format!("Bearer {valid_key}")),
                ("authorization", &format!("Bearer {valid_key}")),
            ]),
            "192.0.2.10:1",
            "401 malformed credential: repeated authorization header",
        ),
        Case::new(
            "basic scheme",
            headers(&[("authorization", "Basic YWxpY2U6cGFzc3dvcmQ=")]),
            "192.0.2.10:1",
            "401 malformed credential: authorization scheme is not bearer",
        ),
        Case::new(
            "no credential",
            headers(&[]),
            "192.0.2.10:1",
            "401 no credential presented",
        ),
    ];
    check(&auth, cases).await;

    // What the client sees is identical for every rejected key.
    let mut seen = BTreeSet::new();
    let rejected = [
        revoked.key.expose_secret(),
        expired.key.expose_secret(),
        unknown.key.expose_secret(),
        &wrong_secret,
    ];
    for key in rejected {
        let error = auth
            .authenticate(&bearer(key), client_peer())
            .await
            .unwrap_err();
        let challenge = auth.www_authenticate(&error).unwrap();
        seen.insert((error.status(), error.client_message(), challenge));
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[test]
fn key_material_never_shows_in_debug() {
    let settings = settings(CONFIG).unwrap();
    let pepper = settings.api_keys().unwrap().pepper();
    let issued = IssuedApiKey::generate(pepper).unwrap();
    let secret = secret_of(&issued);
    let debug = format!("{issued:?} {settings:?} {pepper:?}");
    assert!(!debug.contains(&secret), "{debug}");
    assert!(!debug.contains(PEPPER), "{debug}");
    assert!(debug.contains(issued.id.as_str()));
    assert_eq!(
        issued.key.expose_secret(),
        format!("gh_{}_{secret}", issued.id)
    );
}

#[test]
fn digests_compare_in_constant_time_and_survive_the_store() {
    let settings = settings(CONFIG).unwrap();
    let pepper = settings.api_keys().unwrap().pepper();
    let issued = IssuedApiKey::generate(pepper).unwrap();
    let restored = KeyDigest::from_hex(&issued.digest.to_hex()).unwrap();
    assert!(restored.matches(&issued.digest));
    // Differs only in the last byte: still no match (and `matches` is the only comparison
    // there is, see the compile_fail example on KeyDigest).
    let mut prefix_match = *issued.digest.as_bytes();
    prefix_match[31] ^= 1;
    assert!(!KeyDigest::from_bytes(prefix_match).matches(&issued.digest));
    assert!(KeyDigest::from_hex("zz").is_none());
    let other = IssuedApiKey::generate(pepper).unwrap();
    assert!(!other.digest.matches(&issued.digest));
}

#[tokio::test]
async fn a_store_outage_is_a_503_not_a_401() {
    let auth = authenticator(CONFIG, BrokenKeys);
    let pepper = auth.settings().api_keys().unwrap().pepper();
    let issued = IssuedApiKey::generate(pepper).unwrap();
    let cases = vec![Case::bearer(
        "store down",
        issued.key.expose_secret(),
        "503 api key store unavailable: key lookup failed: database is locked",
    )];
    check(&auth, cases).await;
}

#[tokio::test]
async fn api_keys_are_refused_when_disabled() {
    let config = "[api_keys]\nenabled = false\n[trusted_header]\nuser_header = \"x-user\"\n\
                  trusted_proxies = [\"10.0.0.0/8\"]";
    let auth = authenticator(config, MemoryKeys::default());
    let key = format!("gh_0123456789abcdef_{}", "A".repeat(43));
    let cases = vec![Case::bearer(
        "disabled",
        &key,
        "401 api_key credentials are not enabled",
    )];
    check(&auth, cases).await;
}
