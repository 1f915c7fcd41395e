//! A real token issuer for tests: keys generated at test time, a discovery document and a
//! JWKS served on 127.0.0.1 port 0, and a count of every fetch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey as _;
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{Value, json};

/// One RSA key for the whole test binary: generating it is the slow part.
static RSA_KEY: LazyLock<rsa::RsaPrivateKey> = LazyLock::new(|| {
    rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa key generation")
});

/// A signing key with its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    pub jwk: Value,
    /// The public key as PEM, what an attacker would use as an HMAC secret.
    pub public_pem: Vec<u8>,
}

impl SigningKey {
    pub fn rsa(kid: &str) -> Self {
        let private = RSA_KEY.to_pkcs8_pem(LineEnding::LF).unwrap();
        let public_pem = RSA_KEY
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
            .into_bytes();
        let encoding = EncodingKey::from_rsa_pem(private.as_bytes()).unwrap();
        Self::with_jwk(kid, Algorithm::RS256, encoding, public_pem)
    }

    pub fn ec(kid: &str) -> Self {
        let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
        let private = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let encoding = EncodingKey::from_ec_pem(private.as_bytes()).unwrap();
        Self::with_jwk(kid, Algorithm::ES256, encoding, Vec::new())
    }

    fn with_jwk(kid: &str, alg: Algorithm, encoding: EncodingKey, public_pem: Vec<u8>) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk: serde_json::to_value(&jwk).unwrap(),
            public_pem,
        }
    }

    /// A header for this key: its algorithm and kid.
    pub fn header(&self) -> Header {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header
    }

    pub fn sign(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).unwrap()
    }

    pub fn jwk_struct(&self) -> Jwk {
        serde_json::from_value(self.jwk.clone()).unwrap()
    }
}

struct IssuerState {
    url: String,
    /// What the discovery document says the issuer is; normally `url`.
    claimed_issuer: RwLock<String>,
    jwks: RwLock<Value>,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
}

/// The issuer server.
pub struct TestIssuer {
    pub url: String,
    state: Arc<IssuerState>,
}

impl TestIssuer {
    pub async fn start(keys: &[&SigningKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(IssuerState {
            url: url.clone(),
            claimed_issuer: RwLock::new(url.clone()),
            jwks: RwLock::new(Value::Null),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, router).await });
        let issuer = Self { url, state };
        issuer.publish(keys);
        issuer
    }

    /// Replaces the published key set.
    pub fn publish(&self, keys: &[&SigningKey]) {
        let keys: Vec<Value> = keys.iter().map(|key| key.jwk.clone()).collect();
        *self.state.jwks.write().unwrap() = json!({ "keys": keys });
    }

    /// Makes the discovery document name another issuer.
    pub fn claim_issuer(&self, issuer: &str) {
        *self.state.claimed_issuer.write().unwrap() = issuer.to_owned();
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.url)
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Claims that pass every check: this issuer, the gateway's audience, valid now.
    pub fn claims(&self) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({
            "iss": self.url,
            "aud": super::support::RESOURCE_URL,
            "sub": "user-1",
            "preferred_username": "alice",
            "email": "alice@example.com",
            "groups": ["ops", "eng"],
            "scope": "openid mcp:tools",
            "jti": "token-1",
            "iat": now,
            "nbf": now - 10,
            "exp": now + 600,
        })
    }
}

async fn discovery(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let issuer = state.claimed_issuer.read().unwrap().clone();
    Json(json!({ "issuer": issuer, "jwks_uri": format!("{}/jwks", state.url) }))
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(state.jwks.read().unwrap().clone())
}

/// A server that counts every request it gets, whatever the path: the attacker's key server
/// named in `jku`/`x5u` headers, which must never be contacted.
pub struct CountingServer {
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl CountingServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let router = Router::new().fallback(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Json(json!({ "keys": [] }))
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url: format!("http://{address}"),
            hits,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
