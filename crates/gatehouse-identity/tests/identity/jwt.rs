//! Bearer tokens from the test issuer: good ones accepted, every bad one rejected with its
//! reason, and the key fetches counted (AUTH-AUD, AUTH-CLAIMTYPE, AUTH-ALG).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::issuer::{CountingServer, SigningKey, TestIssuer};
use crate::support::{Case, MemoryKeys, authenticator, check, oidc_toml};

fn with(mut claims: Value, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    edit(claims.as_object_mut().unwrap());
    claims
}

fn unsigned(header: &Value, claims: &Value) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    format!("{}.{}.", part(header), part(claims))
}

#[tokio::test]
async fn bearer_tokens_are_checked_in_full() {
    let rsa = SigningKey::rsa("rsa-1");
    let ec = SigningKey::ec("ec-1");
    let attacker = SigningKey::ec("attacker-1");
    let issuer = TestIssuer::start(&[&rsa, &ec]).await;
    let attacker_server = CountingServer::start().await;
    // A long cooldown: every unknown kid below after the first fetch must not cause another.
    let config = oidc_toml(&issuer.url, "cooldown_secs = 300");
    let auth = authenticator(&config, MemoryKeys::default());
    let now = jsonwebtoken::get_current_timestamp();
    let good = issuer.claims();

    let jku_header = |kid: &str| {
        let mut header = attacker.header();
        header.kid = Some(kid.to_owned());
        header.jku = Some(format!("{}/jwks", attacker_server.url));
        header.x5u = Some(format!("{}/cert.pem", attacker_server.url));
        header
    };
    let mut embedded_jwk = attacker.header();
    embedded_jwk.kid = Some(ec.kid.clone());
    embedded_jwk.jwk = Some(attacker.jwk_struct());
    let mut x5c = attacker.header();
    x5c.kid = Some(ec.kid.clone());
    x5c.x5c = Some(vec!["MIIBszCCAVmgAwIBAgIUQ".to_owned()]);
    let mut critical = ec.header();
    critical.crit = Some(vec!["exp".to_owned()]);
    let mut no_kid = ec.header();
    no_kid.kid = None;
    let mut hs256_with_public_key = Header::new(Algorithm::HS256);
    hs256_with_public_key.kid = Some(rsa.kid.clone());
    let hs256_token = jsonwebtoken::encode(
        &hs256_with_public_key,
        &good,
        &EncodingKey::from_secret(&rsa.public_pem),
    )
    .unwrap();
    let mut es256_on_rsa_kid = ec.header();
    es256_on_rsa_kid.kid = Some(rsa.kid.clone());
    let mut rs384_on_rs256_key = Header::new(Algorithm::RS384);
    rs384_on_rs256_key.kid = Some(rsa.kid.clone());
    let tampered = {
        let token = rsa.sign(&rsa.header(), &good);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let admin = with(good.clone(), |c| {
            c.insert("preferred_username".into(), json!("admin"));
        });
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).unwrap());
        parts.join(".")
    };

    let ok = "ok jwt user=alice groups=[eng,ops] teams=[] credential=jwt:user-1#token-1";
    let cases = vec![
        Case::bearer("rs256", &rsa.sign(&rsa.header(), &good), ok),
        Case::bearer("es256", &ec.sign(&ec.header(), &good), ok),
        Case::bearer(
            "audience list naming the gateway",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("aud".into(), json!(["other", crate::support::RESOURCE_URL]));
                }),
            ),
            ok,
        ),
        Case::bearer(
            "single group as a string",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("groups".into(), json!("eng"));
                    c.remove("jti");
                }),
            ),
            "ok jwt user=alice groups=[eng] teams=[] credential=jwt:user-1",
        ),
        Case::bearer(
            "wrong audience",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("aud".into(), json!("https://other-service.test"));
                }),
            ),
            "401 bearer token rejected: wrong audience",
        ),
        Case::bearer(
            "no audience",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.remove("aud");
                }),
            ),
            "401 bearer token rejected: missing claim aud",
        ),
        Case::bearer(
            "wrong issuer",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("iss".into(), json!("https://evil.test"));
                }),
            ),
            "401 bearer token rejected: wrong issuer",
        ),
        Case::bearer(
            "expired",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("exp".into(), json!(now - 3600));
                }),
            ),
            "401 bearer token rejected: expired",
        ),
        Case::bearer(
            "numeric future nbf",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("nbf".into(), json!(now + 3600));
                }),
            ),
            "401 bearer token rejected: not yet valid",
        ),
        Case::bearer(
            "exp never",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("exp".into(), json!("never"));
                }),
            ),
            "401 bearer token rejected: claim exp has the wrong type",
        ),
        Case::bearer(
            "string nbf",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("nbf".into(), json!("99999999999"));
                }),
            ),
            "401 bearer token rejected: claim nbf has the wrong type",
        ),
        Case::bearer(
            "string iat",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("iat".into(), json!("yesterday"));
                }),
            ),
            "401 bearer token rejected: claim iat has the wrong type",
        ),
        Case::bearer(
            "numeric sub",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("sub".into(), json!(42));
                }),
            ),
            "401 bearer token rejected: claim sub has the wrong type",
        ),
        Case::bearer(
            "groups not a list of strings",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("groups".into(), json!([1, 2]));
                }),
            ),
            "401 bearer token rejected: claim groups has the wrong type",
        ),
        Case::bearer(
            "no exp",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.remove("exp");
                }),
            ),
            "401 bearer token rejected: missing claim exp",
        ),
        Case::bearer(
            "no user claim",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.remove("preferred_username");
                }),
            ),
            "401 bearer token rejected: missing claim preferred_username",
        ),
        Case::bearer(
            "without the required scope",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("scope".into(), json!("openid"));
                }),
            ),
            "403 token lacks required scopes: mcp:tools",
        ),
        Case::bearer(
            "scope in scp array",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.remove("scope");
                    c.insert("scp".into(), json!(["mcp:tools"]));
                }),
            ),
            ok,
        ),
        Case::bearer(
            "alg none",
            &unsigned(&json!({"alg": "none", "typ": "JWT", "kid": rsa.kid}), &good),
            "401 bearer token rejected: malformed or unsupported token header",
        ),
        Case::bearer(
            "HS256 signed with the RSA public key",
            &hs256_token,
            "401 bearer token rejected: algorithm HS256 is not allowed",
        ),
        Case::bearer(
            "ES256 naming the RSA key",
            &ec.sign(&es256_on_rsa_kid, &good),
            "401 bearer token rejected: algorithm ES256 does not match the key",
        ),
        Case::bearer(
            "RS384 on a key published for RS256",
            &unsigned(&serde_json::to_value(&rs384_on_rs256_key).unwrap(), &good),
            "401 bearer token rejected: algorithm RS384 does not match the key",
        ),
        Case::bearer(
            "jku and x5u to the attacker, attacker kid",
            &attacker.sign(&jku_header(&attacker.kid), &good),
            "401 bearer token rejected: unknown key id",
        ),
        Case::bearer(
            "jku and x5u to the attacker, real kid",
            &attacker.sign(&jku_header(&ec.kid), &good),
            "401 bearer token rejected: invalid signature",
        ),
        Case::bearer(
            "embedded jwk header",
            &attacker.sign(&embedded_jwk, &good),
            "401 bearer token rejected: invalid signature",
        ),
        Case::bearer(
            "x5c header",
            &attacker.sign(&x5c, &good),
            "401 bearer token rejected: invalid signature",
        ),
        Case::bearer(
            "tampered payload",
            &tampered,
            "401 bearer token rejected: invalid signature",
        ),
        Case::bearer(
            "critical header",
            &ec.sign(&critical, &good),
            "401 bearer token rejected: critical header extensions are not supported",
        ),
        Case::bearer(
            "no kid",
            &ec.sign(&no_kid, &good),
            "401 bearer token rejected: token has no key id",
        ),
        Case::bearer(
            "not a token",
            "abc.def.ghi",
            "401 bearer token rejected: malformed or unsupported token header",
        ),
        Case::bearer(
            "unknown kid",
            &attacker.sign(&attacker.header(), &good),
            "401 bearer token rejected: unknown key id",
        ),
    ];
    check(&auth, cases).await;

    assert_eq!(issuer.discovery_fetches(), 1, "one discovery");
    assert_eq!(
        issuer.jwks_fetches(),
        1,
        "one key fetch for the whole table"
    );
    assert_eq!(
        attacker_server.hits(),
        0,
        "token-supplied URLs are never fetched"
    );
}

#[tokio::test]
async fn wrongly_typed_claims_are_refused_before_any_key_fetch() {
    let ec = SigningKey::ec("ec-1");
    let issuer = TestIssuer::start(&[&ec]).await;
    let auth = authenticator(&oidc_toml(&issuer.url, ""), MemoryKeys::default());
    let good = issuer.claims();
    let cases = vec![
        Case::bearer(
            "exp never",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("exp".into(), json!("never"));
                }),
            ),
            "401 bearer token rejected: claim exp has the wrong type",
        ),
        Case::bearer(
            "fractional exp",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("exp".into(), json!(1.5e10));
                }),
            ),
            "401 bearer token rejected: claim exp has the wrong type",
        ),
        Case::bearer(
            "string nbf",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("nbf".into(), json!("99999999999"));
                }),
            ),
            "401 bearer token rejected: claim nbf has the wrong type",
        ),
        Case::bearer(
            "numeric issuer",
            &ec.sign(
                &ec.header(),
                &with(good, |c| {
                    c.insert("iss".into(), json!(7));
                }),
            ),
            "401 bearer token rejected: claim iss has the wrong type",
        ),
    ];
    check(&auth, cases).await;
    assert_eq!(issuer.discovery_fetches() + issuer.jwks_fetches(), 0);
}

#[tokio::test]
async fn user_claim_mapping_follows_the_config() {
    let ec = SigningKey::ec("ec-1");
    let issuer = TestIssuer::start(&[&ec]).await;
    let extra = "user_claim = \"email\"\nteams_claim = \"teams\"\nrequired_scopes = []";
    let config = oidc_toml(&issuer.url, "")
        .replace("user_claim = \"preferred_username\"\n", "")
        .replace("required_scopes = [\"mcp:tools\"]\n", "")
        + extra;
    let auth = authenticator(&config, MemoryKeys::default());
    let good = with(issuer.claims(), |c| {
        c.insert("teams".into(), json!(["payments"]));
        c.insert("email_verified".into(), json!(true));
    });
    let cases = vec![
        Case::bearer(
            "email as the user",
            &ec.sign(&ec.header(), &good),
            "ok jwt user=alice@example.com groups=[eng,ops] teams=[payments] credential=jwt:user-1#token-1",
        ),
        Case::bearer(
            "unverified email",
            &ec.sign(
                &ec.header(),
                &with(good.clone(), |c| {
                    c.insert("email_verified".into(), json!(false));
                }),
            ),
            "401 bearer token rejected: email address is not verified",
        ),
        Case::bearer(
            "no scope needed",
            &ec.sign(
                &ec.header(),
                &with(good, |c| {
                    c.remove("scope");
                }),
            ),
            "ok jwt user=alice@example.com groups=[eng,ops] teams=[payments] credential=jwt:user-1#token-1",
        ),
    ];
    check(&auth, cases).await;
}

#[tokio::test]
async fn tokens_are_refused_when_oidc_is_not_configured() {
    let ec = SigningKey::ec("ec-1");
    let issuer = TestIssuer::start(&[&ec]).await;
    let config = "[api_keys]\npepper_env = \"PEPPER\"";
    let auth = authenticator(config, MemoryKeys::default());
    let cases = vec![Case::bearer(
        "jwt with only api keys enabled",
        &ec.sign(&ec.header(), &issuer.claims()),
        "401 jwt credentials are not enabled",
    )];
    check(&auth, cases).await;
}
