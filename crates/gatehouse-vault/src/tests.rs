#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use gatehouse_store::{SecretRef, Store, StoreError};
use secrecy::{ExposeSecret, SecretString};

use crate::{Details, KEY_FILE, Vault, VaultError, VaultKey};

async fn store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
    Store::open(&url).await.unwrap()
}

fn value(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

#[tokio::test]
async fn values_are_sealed_at_rest_and_open_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let key = VaultKey::create_file(&dir.path().join(KEY_FILE)).unwrap();
    let vault = Vault::open(store.clone(), key).await.unwrap();
    let github = SecretRef::service("github");
    let metadata = vault
        .add(github, &value("ghp_canary_4f1d2b7e"), Details::default())
        .await
        .unwrap();
    assert_eq!(metadata.version, 1);
    let credential = vault.reveal(github).await.unwrap();
    assert_eq!(credential.metadata.secret_ref().to_string(), "github");
    assert_eq!(credential.value.expose_secret(), "ghp_canary_4f1d2b7e");
    assert!(!format!("{credential:?}").contains("canary"));

    let sealed = store.secret(github).await.unwrap();
    assert!(
        !sealed
            .ciphertext
            .windows(6)
            .any(|window| window == b"canary")
    );
    store.close().await;
    let file = std::fs::read(dir.path().join("gatehouse.db")).unwrap();
    assert!(!file.windows(6).any(|window| window == b"canary"));
}

#[tokio::test]
async fn another_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let key = VaultKey::create_file(&dir.path().join(KEY_FILE)).unwrap();
    let vault = Vault::open(store.clone(), key).await.unwrap();
    vault
        .add(
            SecretRef::service("slack"),
            &value("xoxb-12345678"),
            Details::default(),
        )
        .await
        .unwrap();
    let error = Vault::open(store, VaultKey::generate().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, VaultError::WrongKey { .. }));
    assert!(
        error
            .to_string()
            .contains("not the key this store's secrets were sealed with")
    );
    // The same key file opens it again.
    let again = VaultKey::load(dir.path()).unwrap().unwrap();
    assert_eq!(
        again.origin(),
        &crate::KeyOrigin::File(dir.path().join(KEY_FILE))
    );
}

#[tokio::test]
async fn rotation_makes_a_new_version_and_an_old_one_put_back_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let vault = Vault::open(store.clone(), VaultKey::generate().unwrap())
        .await
        .unwrap();
    store.add_user("alice", "Alice").await.unwrap();
    let secret = SecretRef::of_user("jira", "alice");
    vault
        .add(secret, &value("first-value-1"), Details::default())
        .await
        .unwrap();
    let old = store.secret(secret).await.unwrap();
    let rotated = vault
        .rotate(secret, &value("second-value-2"))
        .await
        .unwrap();
    assert_eq!(rotated.version, 2);
    assert_eq!(
        vault.reveal(secret).await.unwrap().value.expose_secret(),
        "second-value-2"
    );
    // Put the version-1 ciphertext back as if it were version 3: it must not open.
    store
        .rotate_secret(secret, 2, &old.ciphertext, &old.nonce)
        .await
        .unwrap();
    let error = vault.reveal(secret).await.unwrap_err();
    assert!(
        matches!(error, VaultError::Tampered { version: 3, .. }),
        "{error}"
    );
    // Nor does a value moved onto another secret.
    vault
        .add(
            SecretRef::service("other"),
            &value("other-value-3"),
            Details::default(),
        )
        .await
        .unwrap();
    let moved = store.secret(SecretRef::service("other")).await.unwrap();
    store
        .rotate_secret(secret, 3, &moved.ciphertext, &moved.nonce)
        .await
        .unwrap();
    assert!(matches!(
        vault.reveal(secret).await.unwrap_err(),
        VaultError::Tampered { .. }
    ));
}

#[tokio::test]
async fn bad_values_and_duplicates_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(store(&dir).await, VaultKey::generate().unwrap())
        .await
        .unwrap();
    let secret = SecretRef::service("short");
    let error = vault
        .add(secret, &value("abc"), Details::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("shorter than 8 characters"));
    let error = vault
        .add(secret, &value("line-one\n"), Details::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("line break"));
    vault
        .add(secret, &value("long-enough"), Details::default())
        .await
        .unwrap();
    let error = vault
        .add(secret, &value("long-enough"), Details::default())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        VaultError::Store(StoreError::AlreadyExists { .. })
    ));
}
