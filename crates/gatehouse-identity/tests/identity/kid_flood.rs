//! AUTH-KIDFLOOD: tokens with random key ids cause at most one key fetch per cooldown, real
//! tokens keep working, and a genuinely rotated key is accepted after one refresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::task::JoinSet;

use crate::issuer::{SigningKey, TestIssuer};
use crate::support::{
    Case, MemoryKeys, authenticator, bearer, check, client_peer, describe, oidc_toml,
};

/// The rate in SECURITY.md AUTH-KIDFLOOD: ten thousand tokens, all inside one cooldown.
const FLOOD: usize = 10_000;

/// Tokens with random key ids. Their signatures are junk: an unknown kid is refused before
/// any signature is checked, which is also what an attacker would rely on.
async fn flood(
    auth: &Arc<gatehouse_identity::Authenticator<MemoryKeys>>,
    claims: &serde_json::Value,
) {
    let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let payload = encode(claims);
    let mut requests = JoinSet::new();
    for index in 0..FLOOD {
        let header = serde_json::json!({ "alg": "ES256", "kid": format!("random-kid-{index}") });
        let token = format!("{}.{payload}.c2lnbmF0dXJl", encode(&header));
        let auth = Arc::clone(auth);
        requests.spawn(async move {
            describe(&auth.authenticate(&bearer(&token), client_peer()).await)
        });
    }
    while let Some(outcome) = requests.join_next().await {
        assert_eq!(
            outcome.unwrap(),
            "401 bearer token rejected: unknown key id"
        );
    }
}

#[tokio::test]
async fn random_kids_cause_one_fetch_per_cooldown() {
    let ec = SigningKey::ec("ec-1");
    let issuer = TestIssuer::start(&[&ec]).await;
    let config = oidc_toml(&issuer.url, "cooldown_secs = 300");
    let auth = Arc::new(authenticator(&config, MemoryKeys::default()));
    let claims = issuer.claims();

    // The flood arrives first: exactly one fetch, shared by all of it.
    flood(&auth, &claims).await;
    assert_eq!(issuer.jwks_fetches(), 1);

    let ok = "ok jwt user=alice groups=[eng,ops] teams=[] credential=jwt:user-1#token-1";
    check(
        &auth,
        vec![Case::bearer(
            "legitimate token",
            &ec.sign(&ec.header(), &claims),
            ok,
        )],
    )
    .await;
    flood(&auth, &claims).await;
    check(
        &auth,
        vec![Case::bearer(
            "legitimate token",
            &ec.sign(&ec.header(), &claims),
            ok,
        )],
    )
    .await;
    assert_eq!(issuer.jwks_fetches(), 1, "no fetch within the cooldown");
    assert_eq!(issuer.discovery_fetches(), 1);
}

#[tokio::test]
async fn a_rotated_key_is_accepted_after_one_refresh() {
    let old = SigningKey::ec("2026-old");
    let new = SigningKey::ec("2026-new");
    let issuer = TestIssuer::start(&[&old]).await;
    let jwks_uri = format!("jwks_uri = \"{}\"\ncooldown_secs = 1", issuer.jwks_uri());
    let auth = authenticator(&oidc_toml(&issuer.url, &jwks_uri), MemoryKeys::default());
    let claims = issuer.claims();
    let old_token = ec_token(&old, &claims);
    let new_token = ec_token(&new, &claims);
    let accepted = "ok jwt user=alice groups=[eng,ops] teams=[] credential=jwt:user-1#token-1";

    check(
        &auth,
        vec![Case::bearer("before rotation", &old_token, accepted)],
    )
    .await;
    assert_eq!(issuer.jwks_fetches(), 1);

    issuer.publish(&[&new]);
    // Until the cooldown since the last fetch has passed the new kid is refused without a
    // fetch; then exactly one refresh picks it up.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outcome = describe(&auth.authenticate(&bearer(&new_token), client_peer()).await);
        if outcome == accepted {
            break;
        }
        assert_eq!(outcome, "401 bearer token rejected: unknown key id");
        assert!(Instant::now() < deadline, "rotated key never accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(issuer.jwks_fetches(), 2, "one refresh for the rotation");
    assert_eq!(
        issuer.discovery_fetches(),
        0,
        "a configured jwks_uri skips discovery"
    );

    check(
        &auth,
        vec![Case::bearer(
            "the retired key",
            &old_token,
            "401 bearer token rejected: unknown key id",
        )],
    )
    .await;
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let ec = SigningKey::ec("ec-1");
    let issuer = TestIssuer::start(&[&ec]).await;
    issuer.claim_issuer("https://evil.test");
    let auth = authenticator(&oidc_toml(&issuer.url, ""), MemoryKeys::default());
    let outcome = auth
        .authenticate(&bearer(&ec_token(&ec, &issuer.claims())), client_peer())
        .await;
    let expected = format!(
        "503 identity provider keys unavailable: discovery document names issuer \
         \"https://evil.test\", expected {:?}",
        issuer.url
    );
    assert_eq!(describe(&outcome), expected);
    assert_eq!(issuer.jwks_fetches(), 0);
}

fn ec_token(key: &SigningKey, claims: &serde_json::Value) -> String {
    key.sign(&key.header(), claims)
}
