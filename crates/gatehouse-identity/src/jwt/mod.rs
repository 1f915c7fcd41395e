//! OIDC/JWT bearer tokens: the checks, in the order they run, are header shape, algorithm
//! allowlist, claim types, key lookup by `kid`, algorithm against the key, signature, then
//! issuer, audience, `exp` and `nbf`, then the claim mapping and required scopes.

mod claims;

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::error::{AuthError, TokenRejection};
pub(crate) use crate::jwks::KeySource;
use crate::jwks::{JwksCache, KeyError};
use crate::principal::Principal;

/// Validated `[auth.oidc]`.
#[derive(Debug, Clone)]
pub(crate) struct OidcSettings {
    pub(crate) issuer: String,
    pub(crate) key_source: KeySource,
    pub(crate) audience: String,
    pub(crate) user_claim: String,
    pub(crate) groups_claim: Option<String>,
    pub(crate) teams_claim: Option<String>,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) allowed_algorithms: Vec<Algorithm>,
    pub(crate) cooldown: Duration,
    pub(crate) max_age: Duration,
    pub(crate) leeway_secs: u64,
}

/// Verifies tokens of one issuer against its cached keys.
pub(crate) struct TokenVerifier {
    settings: OidcSettings,
    keys: JwksCache,
}

impl TokenVerifier {
    pub(crate) fn new(settings: OidcSettings) -> Result<Self, reqwest::Error> {
        let keys = JwksCache::new(
            settings.issuer.clone(),
            settings.key_source.clone(),
            settings.cooldown,
            settings.max_age,
        )?;
        Ok(Self { settings, keys })
    }

    pub(crate) async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let reject = AuthError::TokenRejected;
        // An unknown algorithm, `none` included, fails to parse here.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| reject(TokenRejection::MalformedHeader))?;
        if header.crit.is_some() {
            return Err(reject(TokenRejection::CriticalHeader));
        }
        // `jku`, `x5u`, `x5c` and `jwk` in the header are never read: keys come only from the
        // configured issuer (AUTH-ALG).
        let algorithm = header.alg;
        if !self.settings.allowed_algorithms.contains(&algorithm) {
            return Err(reject(TokenRejection::DisallowedAlgorithm(format!(
                "{algorithm:?}"
            ))));
        }
        // Claim types are checked on the unverified claims, only ever to refuse: a token with
        // `"exp": "never"` is turned away before it can cause a key fetch (AUTH-CLAIMTYPE).
        let unverified: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| reject(TokenRejection::Malformed))?;
        claims::check_types(&unverified, &self.settings).map_err(reject)?;
        let kid = header
            .kid
            .as_deref()
            .ok_or(reject(TokenRejection::MissingKeyId))?;
        let key = self.keys.key(kid).await.map_err(|error| match error {
            KeyError::UnknownKeyId => reject(TokenRejection::UnknownKeyId),
            KeyError::Unavailable(message) => AuthError::IdentityProviderUnavailable(message),
        })?;
        // The algorithm must be one the key is for: an RSA key never verifies HS256 (key
        // confusion), even before the allowlist is considered.
        if !key.algorithms.contains(&algorithm) {
            return Err(reject(TokenRejection::AlgorithmMismatchesKey(format!(
                "{algorithm:?}"
            ))));
        }
        let verified = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &key.decoding,
            &self.validation(algorithm),
        )
        .map_err(|error| reject(rejection(error.kind())))?;
        Ok(claims::principal(&verified.claims, &self.settings)?.with_subject_token(token))
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        // Off by default in jsonwebtoken: a token whose `nbf` is in the future must be refused.
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = self.settings.leeway_secs;
        validation
    }
}

fn rejection(kind: &ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::InvalidSignature => TokenRejection::InvalidSignature,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => TokenRejection::MissingClaim(claim.clone()),
        ErrorKind::InvalidClaimFormat(claim) => TokenRejection::WrongClaimType(claim.clone()),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenRejection::AlgorithmMismatchesKey("header".to_owned())
        }
        _ => TokenRejection::Malformed,
    }
}
