//! Identity headers from an SSO proxy: believed from the configured proxies only.

use gatehouse_identity::{IssuedApiKey, StoredKey};
use secrecy::ExposeSecret;

use crate::support::{Case, MemoryKeys, authenticator, check, headers};

const CONFIG: &str = r#"
[api_keys]
pepper_env = "PEPPER"
[trusted_header]
user_header = "X-Forwarded-User"
groups_header = "X-Forwarded-Groups"
teams_header = "X-Forwarded-Teams"
trusted_proxies = ["10.0.0.0/8", "2001:db8::1"]
"#;

#[tokio::test]
async fn identity_headers_are_believed_only_from_trusted_proxies() {
    let keys = MemoryKeys::default();
    let auth = authenticator(CONFIG, keys.clone());
    let issued = IssuedApiKey::generate(auth.settings().api_keys().unwrap().pepper()).unwrap();
    keys.insert(
        issued.id.clone(),
        StoredKey {
            digest: issued.digest.clone(),
            user: "bob".into(),
            groups: Vec::new(),
            teams: Vec::new(),
            expires: None,
            revoked: false,
        },
    );
    let api_key = format!("Bearer {}", issued.key.expose_secret());
    let identity = [
        ("x-forwarded-user", "alice"),
        ("x-forwarded-groups", "eng, ops,,"),
        ("x-forwarded-groups", "admins"),
        ("x-forwarded-teams", "payments"),
    ];
    let with_key = |pairs: &[(&str, &str)]| {
        let mut all = pairs.to_vec();
        all.push(("authorization", &api_key));
        headers(&all)
    };
    let alice = |proxy: &str| {
        format!(
            "ok trusted_header user=alice groups=[admins,eng,ops] teams=[payments] \
             credential=trusted_header:{proxy}"
        )
    };
    let cases = vec![
        Case::new(
            "trusted proxy",
            headers(&identity),
            "10.1.2.3:443",
            alice("10.1.2.3"),
        ),
        Case::new(
            "trusted proxy over an IPv6 socket",
            headers(&identity),
            "[::ffff:10.1.2.3]:443",
            alice("10.1.2.3"),
        ),
        Case::new(
            "trusted IPv6 proxy",
            headers(&identity),
            "[2001:db8::1]:443",
            alice("2001:db8::1"),
        ),
        Case::new(
            "trusted proxy that also forwards a bearer",
            with_key(&identity),
            "10.1.2.3:443",
            alice("10.1.2.3"),
        ),
        Case::new(
            "untrusted peer",
            headers(&identity),
            "192.168.1.5:443",
            "401 identity header x-forwarded-user from untrusted peer 192.168.1.5",
        ),
        Case::new(
            "untrusted peer with a valid api key as well",
            with_key(&identity),
            "192.168.1.5:443",
            "401 identity header x-forwarded-user from untrusted peer 192.168.1.5",
        ),
        Case::new(
            "neighbour of the IPv6 proxy",
            headers(&identity),
            "[2001:db8::2]:443",
            "401 identity header x-forwarded-user from untrusted peer 2001:db8::2",
        ),
        Case::new(
            "trusted proxy without the header falls through to the api key",
            with_key(&[]),
            "10.1.2.3:443",
            format!(
                "ok api_key user=bob groups=[] teams=[] credential=api_key:{}",
                issued.id
            ),
        ),
        Case::new(
            "repeated user header",
            headers(&[
                ("x-forwarded-user", "alice"),
                ("x-forwarded-user", "mallory"),
            ]),
            "10.1.2.3:443",
            "401 malformed credential: repeated user header",
        ),
        Case::new(
            "empty user header",
            headers(&[("x-forwarded-user", " ")]),
            "10.1.2.3:443",
            "401 malformed credential: user header",
        ),
        Case::new(
            "groups without a user",
            headers(&[("x-forwarded-groups", "admins")]),
            "10.1.2.3:443",
            "401 no credential presented",
        ),
    ];
    check(&auth, cases).await;
}
