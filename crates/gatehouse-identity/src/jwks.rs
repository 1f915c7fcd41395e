//! The identity provider's signing keys: fetched from the configured issuer only, cached, and
//! refreshed when a token names an unknown key id, at most once per cooldown (AUTH-KIDFLOOD).
//!
//! A token's `jku`, `x5u`, `x5c` and `jwk` headers are never read here: the only URLs fetched
//! are the configured discovery document and the `jwks_uri` it (or the config) names.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::url_rules::check_url;

/// Larger than any real discovery document or key set.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the signing keys are found.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// `<issuer>/.well-known/openid-configuration`, whose `jwks_uri` names the key set.
    Discovery { document_url: Url },
    /// A configured key set URL.
    JwksUri(Url),
}

/// One usable public key and the algorithms it may verify.
pub(crate) struct VerifyingKey {
    pub(crate) decoding: DecodingKey,
    pub(crate) algorithms: Vec<Algorithm>,
}

/// Why no key could be had for a token.
#[derive(Debug)]
pub(crate) enum KeyError {
    /// The key set, fetched or cached, has no such key.
    UnknownKeyId,
    /// No key set has ever been fetched successfully.
    Unavailable(String),
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
}

impl KeySet {
    fn fresh_key(&self, kid: &str, max_age: Duration) -> Option<Arc<VerifyingKey>> {
        let fresh = self.fetched_at.is_some_and(|at| at.elapsed() < max_age);
        if fresh {
            self.keys.get(kid).cloned()
        } else {
            None
        }
    }
}

/// The cached key set of one issuer.
pub(crate) struct JwksCache {
    issuer: String,
    source: KeySource,
    client: reqwest::Client,
    cooldown: Duration,
    max_age: Duration,
    current: RwLock<Arc<KeySet>>,
    /// Held for the whole of a refresh, so concurrent requests wait for one fetch instead of
    /// starting their own; holds the time of the last attempt, successful or not.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    pub(crate) fn new(
        issuer: String,
        source: KeySource,
        cooldown: Duration,
        max_age: Duration,
    ) -> Result<Self, reqwest::Error> {
        // Redirects are not followed: the configured URLs are the only ones fetched.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()?;
        Ok(Self {
            issuer,
            source,
            client,
            cooldown,
            max_age,
            current: RwLock::default(),
            last_attempt: tokio::sync::Mutex::new(None),
        })
    }

    /// The key named `kid`, refreshing the set first when the key is unknown or the set is
    /// older than its maximum age, unless a refresh was attempted within the cooldown.
    pub(crate) async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, KeyError> {
        let current = self.snapshot();
        if let Some(key) = current.fresh_key(kid, self.max_age) {
            return Ok(key);
        }
        let mut last_attempt = match self.last_attempt.try_lock() {
            Ok(guard) => guard,
            // A refresh is under way: a known key, though stale, is used rather than waiting.
            Err(_) => match current.keys.get(kid) {
                Some(key) => return Ok(Arc::clone(key)),
                None => self.last_attempt.lock().await,
            },
        };
        // Another request may have refreshed the set while this one waited for the lock.
        let before = self.snapshot();
        if let Some(key) = before.fresh_key(kid, self.max_age) {
            return Ok(key);
        }
        let cooling_down = last_attempt.is_some_and(|at| at.elapsed() < self.cooldown);
        if !cooling_down {
            *last_attempt = Some(Instant::now());
            match self.fetch().await {
                Ok(set) => {
                    let keys = set.keys.len();
                    tracing::info!(issuer = %self.issuer, keys, "fetched identity provider keys");
                    let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
                    *current = Arc::new(set);
                }
                Err(error) => {
                    let issuer = &self.issuer;
                    tracing::warn!(%issuer, %error, "identity provider keys could not be fetched");
                    if before.fetched_at.is_none() {
                        return Err(KeyError::Unavailable(error));
                    }
                }
            }
        }
        // A stale key stays usable while the cooldown holds or the provider is unreachable.
        let after = self.snapshot();
        if let Some(key) = after.keys.get(kid) {
            return Ok(Arc::clone(key));
        }
        if after.fetched_at.is_none() {
            return Err(KeyError::Unavailable("no key set fetched yet".into()));
        }
        Err(KeyError::UnknownKeyId)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let jwks_uri = match &self.source {
            KeySource::JwksUri(url) => url.clone(),
            KeySource::Discovery { document_url } => self.discover(document_url).await?,
        };
        let document: JwksDocument = self.get_json(&jwks_uri).await?;
        let keys = document.keys.into_iter().filter_map(usable_key).collect();
        Ok(KeySet {
            keys,
            fetched_at: Some(Instant::now()),
        })
    }

    async fn discover(&self, document_url: &Url) -> Result<Url, String> {
        let document: DiscoveryDocument = self.get_json(document_url).await?;
        // OpenID Connect Discovery 1.0 section 4.3: the document must name the issuer it was
        // fetched for, or a different provider's keys could be trusted.
        if document.issuer != self.issuer {
            return Err(format!(
                "discovery document names issuer {:?}, expected {:?}",
                document.issuer, self.issuer
            ));
        }
        let jwks_uri = Url::parse(&document.jwks_uri)
            .map_err(|error| format!("discovery jwks_uri is not a URL ({error})"))?;
        check_url(&jwks_uri).map_err(|message| format!("discovery jwks_uri {message}"))?;
        Ok(jwks_uri)
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &Url) -> Result<T, String> {
        let failed = |error: reqwest::Error| format!("GET {url}: {error}");
        let mut response = self
            .client
            .get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: status {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!(
                    "GET {url}: document larger than {MAX_DOCUMENT_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|error| format!("GET {url}: invalid JSON ({error})"))
    }
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

/// Keys are parsed one by one, so one key of an unknown type does not hide the others.
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// A signature key with a `kid`, and the algorithms it may verify: the JWK's own `alg` when
/// it has one, otherwise those of its key type. Symmetric (`oct`) keys and encryption keys
/// are never used, which rules out HMAC-with-the-public-key confusion at the source.
fn usable_key(value: serde_json::Value) -> Option<(String, Arc<VerifyingKey>)> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    let kid = jwk.common.key_id.clone()?;
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    if let Some(operations) = &jwk.common.key_operations
        && !operations.contains(&KeyOperations::Verify)
    {
        return None;
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms(),
        AlgorithmParameters::EllipticCurve(key) => match key.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(key) if key.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        Some(declared) => {
            let declared = Algorithm::try_from(declared).ok()?;
            if !family.contains(&declared) {
                return None;
            }
            vec![declared]
        }
        None => family.to_vec(),
    };
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some((
        kid,
        Arc::new(VerifyingKey {
            decoding,
            algorithms,
        }),
    ))
}
