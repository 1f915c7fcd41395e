use secrecy::{ExposeSecret, SecretString};

use super::{ApiKeyId, IssuedApiKey, MalformedApiKey, Pepper, PresentedApiKey};

fn pepper() -> Pepper {
    Pepper::from_secret(SecretString::from("p".repeat(32))).unwrap()
}

#[test]
fn a_generated_key_parses_back_to_its_id_and_digest() {
    let pepper = pepper();
    let issued = IssuedApiKey::generate(&pepper).unwrap();
    let presented = PresentedApiKey::parse(issued.key.expose_secret()).unwrap();
    assert_eq!(presented.id, issued.id);
    assert!(presented.digest(&pepper).matches(&issued.digest));
}

#[test]
fn malformed_keys_are_refused() {
    let secret = "A".repeat(43);
    let table = [
        format!("gh_0123456789abcdef_{secret}"),
        format!("gh_0123456789ABCDEF_{secret}"),
        format!("gh_0123456789abcde_{secret}"),
        format!("gh_0123456789abcdef_{}", &secret[1..]),
        format!("gh_0123456789abcdef_{}!", &secret[1..]),
        format!("xx_0123456789abcdef_{secret}"),
        "gh_0123456789abcdef".to_owned(),
        String::new(),
    ];
    let outcomes: Vec<bool> = table
        .iter()
        .map(|text| PresentedApiKey::parse(text).is_ok())
        .collect();
    assert_eq!(
        outcomes,
        [true, false, false, false, false, false, false, false]
    );
    assert_eq!("0123456789abcdeg".parse::<ApiKeyId>(), Err(MalformedApiKey));
}

#[test]
fn a_secret_containing_underscores_still_parses() {
    let key = format!("gh_0123456789abcdef_{}", "_a".repeat(21) + "b");
    let presented = PresentedApiKey::parse(&key).unwrap();
    assert_eq!(presented.id.as_str(), "0123456789abcdef");
    assert_eq!(presented.secret.expose_secret().len(), 43);
}

#[test]
fn a_short_pepper_is_refused() {
    let error = Pepper::from_secret(SecretString::from("short")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "pepper is 5 bytes; at least 32 are required"
    );
}

#[test]
fn the_digest_binds_the_key_id() {
    let pepper = pepper();
    let issued = IssuedApiKey::generate(&pepper).unwrap();
    // The secret is the last 43 characters; it may itself contain `_`.
    let key = issued.key.expose_secret();
    let secret = &key[key.len() - 43..];
    let moved = PresentedApiKey::parse(&format!("gh_0000000000000000_{secret}")).unwrap();
    assert!(!moved.digest(&pepper).matches(&issued.digest));
}
