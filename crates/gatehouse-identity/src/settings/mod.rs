//! The validated form of `[auth]`. [`AuthSettings::from_raw`] checks everything at once and
//! reports every problem with its path; the pepper is read through [`SecretSource`], so tests
//! never touch the process environment.

mod sections;

use std::fmt;
use std::path::Path;

use secrecy::SecretString;

use crate::api_key::Pepper;
use crate::config::RawAuth;
use crate::jwt::OidcSettings;
use crate::resource_metadata::ProtectedResource;
use crate::trusted_header::TrustedHeaderSettings;
use sections::{api_key_settings, oidc_settings, resource_settings, trusted_header_settings};

/// Validated `[auth]` settings, ready for [`crate::Authenticator::new`].
#[derive(Debug)]
pub struct AuthSettings {
    pub(crate) resource: Option<ProtectedResource>,
    pub(crate) api_keys: Option<ApiKeySettings>,
    pub(crate) oidc: Option<OidcSettings>,
    pub(crate) trusted_header: Option<TrustedHeaderSettings>,
}

/// Settings of gateway API keys; present only when they are enabled.
#[derive(Debug)]
pub struct ApiKeySettings {
    pub(crate) pepper: Pepper,
}

impl ApiKeySettings {
    /// The pepper, for issuing keys with [`crate::IssuedApiKey::generate`].
    pub fn pepper(&self) -> &Pepper {
        &self.pepper
    }
}

impl AuthSettings {
    /// Validates the raw table, reading the pepper through `secrets`.
    pub fn from_raw(raw: &RawAuth, secrets: &dyn SecretSource) -> Result<Self, ConfigError> {
        let mut problems = Problems::default();
        let api_keys = raw
            .api_keys
            .as_ref()
            .and_then(|keys| api_key_settings(keys, secrets, &mut problems));
        let oidc = raw
            .oidc
            .as_ref()
            .and_then(|oidc| oidc_settings(oidc, raw.resource_url.as_deref(), &mut problems));
        let trusted_header = raw
            .trusted_header
            .as_ref()
            .and_then(|header| trusted_header_settings(header, &mut problems));
        let resource = resource_settings(raw, oidc.as_ref(), &mut problems);
        let api_keys_wanted = raw
            .api_keys
            .as_ref()
            .is_some_and(|keys| keys.enabled != Some(false));
        if !api_keys_wanted && raw.oidc.is_none() && raw.trusted_header.is_none() {
            problems.add(
                "auth",
                "no authentication method is enabled; configure api_keys, oidc or trusted_header",
            );
        }
        problems.into_result(Self {
            resource,
            api_keys,
            oidc,
            trusted_header,
        })
    }

    /// API key settings, when API keys are enabled.
    pub fn api_keys(&self) -> Option<&ApiKeySettings> {
        self.api_keys.as_ref()
    }

    /// The protected resource metadata, when `resource_url` is configured.
    pub fn protected_resource(&self) -> Option<&ProtectedResource> {
        self.resource.as_ref()
    }
}

/// Where the pepper comes from. The gateway passes [`ProcessSecrets`]; tests pass a map.
pub trait SecretSource {
    /// The value of an environment variable, if set.
    fn env_var(&self, name: &str) -> Option<SecretString>;
    /// The contents of a file.
    fn read_file(&self, path: &Path) -> std::io::Result<SecretString>;
}

/// Reads secrets from the process environment and the file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSecrets;

impl SecretSource for ProcessSecrets {
    fn env_var(&self, name: &str) -> Option<SecretString> {
        std::env::var(name).ok().map(SecretString::from)
    }

    fn read_file(&self, path: &Path) -> std::io::Result<SecretString> {
        std::fs::read_to_string(path).map(SecretString::from)
    }
}

/// Every problem found in `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in the order the settings are checked.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// One problem: the setting's dotted path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The setting, e.g. `auth.oidc.issuer`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Default)]
pub(crate) struct Problems(Vec<ConfigProblem>);

impl Problems {
    pub(crate) fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError { problems: self.0 })
        }
    }
}

impl Problems {
    /// How many problems have been found so far, to tell whether a section added any.
    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }
}
