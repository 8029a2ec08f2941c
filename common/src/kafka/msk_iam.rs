//! OAUTHBEARER tokens for Amazon MSK IAM access control.
//!
//! The token is what AWS's `aws-msk-iam-sasl-signer` libraries make: the URL
//! `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect`, presigned with SigV4
//! (service `kafka-cluster`, signed header `host`, the signature and credential scope in the query,
//! `X-Amz-Expires=900`, `X-Amz-Security-Token` for temporary credentials), then a `User-Agent`
//! query parameter, all base64url-encoded without padding. The broker recomputes the signature
//! and asks IAM whether the principal may `kafka-cluster:Connect`.
//!
//! librdkafka asks for a token on its own thread (the producer's polling thread) through
//! `ClientContext::generate_oauth_token`, before the first connection and again at 80 % of the
//! token's lifetime. Credentials from the AWS default chain are async (web identity, IMDS), so
//! they are resolved ahead of time by a refresher thread with its own small runtime — never the
//! job's runtime, which the callback must not block on — and the callback only signs, with
//! whatever credentials are current. Only the very first token may wait for the first
//! credentials, bounded by the delivery timeout, on a condition variable.

use std::borrow::Cow;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rdkafka::client::OAuthToken;

use crate::error::error_chain;

/// How long a token is valid, as the AWS signer libraries sign it.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// The SigV4 signing name of MSK's IAM access control.
pub const SIGNING_NAME: &str = "kafka-cluster";

/// The action a token asks for.
pub const ACTION: &str = "kafka-cluster:Connect";

/// Sent as the `User-Agent` query parameter (added after signing, as the AWS signers do).
const USER_AGENT: &str = concat!("governance-jobs-msk-iam/", env!("CARGO_PKG_VERSION"));

/// The principal librdkafka records with the token; MSK takes the principal from the signature.
const PRINCIPAL: &str = "aws-msk-iam";

/// Refresh credentials this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Re-read credentials at least this often (static credentials have no expiry).
const REFRESH_AT_MOST: Duration = Duration::from_secs(15 * 60);

/// After a failed credentials lookup, try again this soon.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// SigV4's URI encoding: everything but the unreserved characters.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why no token could be made. Never contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No usable AWS credentials (the chain found none, failed, or they expired).
    #[error("no AWS credentials for the MSK IAM token: {0}")]
    NoCredentials(String),
    /// The SigV4 signer refused its input.
    #[error("cannot sign the MSK IAM token: {0}")]
    Signing(String),
}

/// A presigned MSK IAM token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The base64url (unpadded) presigned URL: what librdkafka sends as the bearer token.
    pub token: String,
    /// When the broker stops accepting it.
    pub expires_at: SystemTime,
}

/// Presigns the `kafka-cluster:Connect` URL for `region` with `credentials` at `time`.
///
/// The token expires [`TOKEN_LIFETIME`] after `time`, or when the credentials do if sooner.
pub fn presign(
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Token, TokenError> {
    let signing = |e: &dyn std::fmt::Display| TokenError::Signing(e.to_string());
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params: aws_sigv4::http_request::SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| signing(&e))?
        .into();
    let mut url = format!(
        "https://kafka.{region}.amazonaws.com/?Action={}",
        utf8_percent_encode(ACTION, SIGV4_ENCODE)
    );
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| signing(&e))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| signing(&e))?
        .into_parts();
    let (_headers, query) = instructions.into_parts();
    let user_agent: Cow<'static, str> = Cow::Borrowed(USER_AGENT);
    for (name, value) in query.iter().chain([("User-Agent", user_agent)].iter()) {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.extend(utf8_percent_encode(value, SIGV4_ENCODE));
    }
    let mut expires_at = time + TOKEN_LIFETIME;
    if let Some(expiry) = credentials.expiry() {
        expires_at = expires_at.min(expiry);
    }
    Ok(Token {
        token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url),
        expires_at,
    })
}

#[derive(Debug, Default)]
struct State {
    credentials: Option<Credentials>,
    /// The last lookup's failure, if the last lookup failed.
    error: Option<String>,
    /// True once the first lookup finished, either way.
    settled: bool,
}

#[derive(Debug, Default)]
struct Cache {
    state: Mutex<State>,
    changed: Condvar,
}

impl Cache {
    fn set(&self, credentials: Credentials) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = State {
            credentials: Some(credentials),
            error: None,
            settled: true,
        };
        self.changed.notify_all();
    }

    /// Records a failed lookup; credentials from an earlier lookup stay usable until they
    /// expire.
    fn fail(&self, error: String) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.error = Some(error);
        state.settled = true;
        self.changed.notify_all();
    }
}

/// Tokens for librdkafka, signed with credentials a refresher thread keeps current.
pub(crate) struct TokenSource {
    region: String,
    cache: Arc<Cache>,
    /// How long the first token may wait for the first credentials.
    first_wait: Duration,
    /// Dropping it stops the refresher.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TokenSource {
    /// Starts the refresher: `provider`, or the AWS default credentials chain for `region`.
    pub(crate) fn start(
        region: &str,
        provider: Option<SharedCredentialsProvider>,
        first_wait: Duration,
    ) -> TokenSource {
        let cache = Arc::new(Cache::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let refresher_cache = cache.clone();
        let refresher_region = region.to_string();
        let spawned = std::thread::Builder::new()
            .name("msk-iam-credentials".into())
            .spawn(move || refresh(refresher_region, provider, &refresher_cache, stopped));
        if let Err(e) = spawned {
            cache.fail(format!("cannot start the credentials refresher: {e}"));
        }
        TokenSource {
            region: region.to_string(),
            cache,
            first_wait,
            _stop: stop,
        }
    }

    /// A token signed now with the current credentials (waiting, the first time, at most
    /// `first_wait` for them).
    pub(crate) fn token(&self) -> Result<OAuthToken, TokenError> {
        let credentials = self.credentials()?;
        let now = SystemTime::now();
        if let Some(expiry) = credentials.expiry()
            && expiry <= now
        {
            let state = self
                .cache
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            return Err(TokenError::NoCredentials(format!(
                "the last credentials expired at {}{}",
                jiff::Timestamp::try_from(expiry).map_or_else(|_| "?".into(), |t| t.to_string()),
                state
                    .error
                    .as_ref()
                    .map(|e| format!(" and refreshing them failed: {e}"))
                    .unwrap_or_default()
            )));
        }
        let token = presign(&credentials, &self.region, now)?;
        let lifetime_ms = token
            .expires_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Ok(OAuthToken {
            token: token.token,
            principal_name: PRINCIPAL.to_string(),
            lifetime_ms,
        })
    }

    fn credentials(&self) -> Result<Credentials, TokenError> {
        let deadline = Instant::now() + self.first_wait;
        let mut state = self
            .cache
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while !state.settled {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            state = self
                .cache
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        match (&state.credentials, &state.error) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(e)) => Err(TokenError::NoCredentials(e.clone())),
            (None, None) => Err(TokenError::NoCredentials(format!(
                "the credentials chain did not answer within {:?}",
                self.first_wait
            ))),
        }
    }
}

/// The refresher thread's body: look credentials up, keep them in `cache`, look again before
/// they expire, until `stopped` fires (the token source was dropped).
fn refresh(
    region: String,
    provider: Option<SharedCredentialsProvider>,
    cache: &Cache,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            cache.fail(format!(
                "cannot start the credentials refresher's runtime: {e}"
            ));
            return;
        }
    };
    runtime.block_on(async move {
        let provider = match provider {
            Some(p) => p,
            None => {
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(region))
                    .load()
                    .await;
                match sdk.credentials_provider() {
                    Some(p) => p,
                    None => {
                        cache.fail("the AWS default chain has no credentials provider".into());
                        return;
                    }
                }
            }
        };
        loop {
            let wait = match provider.provide_credentials().await {
                Ok(credentials) => {
                    let wait = refresh_in(&credentials, SystemTime::now());
                    cache.set(credentials);
                    wait
                }
                Err(e) => {
                    cache.fail(error_chain(&e));
                    RETRY_AFTER_FAILURE
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = &mut stopped => return,
            }
        }
    });
}

/// When to look credentials up again: [`REFRESH_MARGIN`] before they expire, at most
/// [`REFRESH_AT_MOST`] from now, at least [`RETRY_AFTER_FAILURE`].
fn refresh_in(credentials: &Credentials, now: SystemTime) -> Duration {
    let until_expiry = credentials
        .expiry()
        .map(|e| e.duration_since(now).unwrap_or_default());
    until_expiry
        .map_or(REFRESH_AT_MOST, |left| left.saturating_sub(REFRESH_MARGIN))
        .clamp(RETRY_AFTER_FAILURE, REFRESH_AT_MOST)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aws_credential_types::provider::error::CredentialsError;
    use aws_credential_types::provider::future;

    use super::*;

    fn decode(token: &str) -> (String, BTreeMap<String, String>) {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .expect("base64url without padding");
        let url = String::from_utf8(bytes).expect("utf-8");
        let (base, query) = url.split_once('?').expect("a query");
        let params = query
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("k=v");
                let v = percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .expect("utf-8");
                (k.to_string(), v.into_owned())
            })
            .collect();
        (base.to_string(), params)
    }

    #[test]
    fn the_token_is_the_presigned_connect_url_the_aws_signers_make() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_428_000); // 2026-11-23T10:00:00Z
        let credentials = Credentials::new("AKIDEXAMPLE", "secret-key", None, None, "test");
        let token = presign(&credentials, "eu-west-1", time).expect("signed");
        assert_eq!(token.expires_at, time + TOKEN_LIFETIME);
        let (base, params) = decode(&token.token);
        assert_eq!(base, "https://kafka.eu-west-1.amazonaws.com/");
        assert_eq!(params["Action"], "kafka-cluster:Connect");
        assert_eq!(params["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(
            params["X-Amz-Credential"],
            "AKIDEXAMPLE/20261123/eu-west-1/kafka-cluster/aws4_request"
        );
        assert_eq!(params["X-Amz-Date"], "20261123T100000Z");
        assert_eq!(params["X-Amz-Expires"], "900");
        assert_eq!(params["X-Amz-SignedHeaders"], "host");
        assert_eq!(params["X-Amz-Signature"].len(), 64, "hex SHA-256 HMAC");
        assert!(params["User-Agent"].starts_with("governance-jobs-msk-iam/"));
        assert!(!params.contains_key("X-Amz-Security-Token"));
        assert!(
            !String::from_utf8_lossy(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&token.token)
                    .expect("decode")
            )
            .contains("secret-key"),
            "the secret key signs; it is never in the token"
        );
        // Same input, same signature: nothing random goes into it.
        assert_eq!(
            presign(&credentials, "eu-west-1", time).expect("signed"),
            token
        );
    }

    #[test]
    fn temporary_credentials_add_their_session_token_and_cap_the_lifetime() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_428_000);
        let expiry = time + Duration::from_secs(60);
        let credentials = Credentials::new(
            "ASIAEXAMPLE",
            "secret-key",
            Some("session/token+=".into()),
            Some(expiry),
            "test",
        );
        let token = presign(&credentials, "us-east-1", time).expect("signed");
        assert_eq!(token.expires_at, expiry);
        let (_, params) = decode(&token.token);
        assert_eq!(params["X-Amz-Security-Token"], "session/token+=");
    }

    #[test]
    fn the_refresher_looks_again_before_expiry_and_not_too_often() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let creds = |expiry| Credentials::new("a", "b", None, expiry, "t");
        assert_eq!(refresh_in(&creds(None), now), REFRESH_AT_MOST);
        assert_eq!(
            refresh_in(&creds(Some(now + Duration::from_secs(3600))), now),
            REFRESH_AT_MOST
        );
        assert_eq!(
            refresh_in(&creds(Some(now + Duration::from_secs(600))), now),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_in(&creds(Some(now + Duration::from_secs(60))), now),
            RETRY_AFTER_FAILURE
        );
    }

    #[test]
    fn a_token_source_signs_with_the_provider_s_credentials() {
        let provider =
            SharedCredentialsProvider::new(Credentials::new("AKIDSTATIC", "s", None, None, "t"));
        let source = TokenSource::start("eu-central-1", Some(provider), Duration::from_secs(10));
        let token = source.token().expect("a token");
        assert_eq!(token.principal_name, PRINCIPAL);
        let (_, params) = decode(&token.token);
        assert!(params["X-Amz-Credential"].starts_with("AKIDSTATIC/"));
        let expires = SystemTime::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(token.lifetime_ms).expect("positive"));
        let left = expires
            .duration_since(SystemTime::now())
            .expect("in the future");
        assert!(left <= TOKEN_LIFETIME, "{left:?}");
    }

    #[derive(Debug)]
    struct NoCredentials;

    impl ProvideCredentials for NoCredentials {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                "no credentials in this test",
            )))
        }
    }

    #[test]
    fn a_failing_chain_is_an_error_naming_why_not_a_hang() {
        let source = TokenSource::start(
            "eu-central-1",
            Some(SharedCredentialsProvider::new(NoCredentials)),
            Duration::from_secs(10),
        );
        let Err(err) = source.token() else {
            panic!("a token without credentials")
        };
        let text = err.to_string();
        assert!(
            text.starts_with("no AWS credentials for the MSK IAM token:"),
            "{text}"
        );
        assert!(text.contains("no credentials in this test"), "{text}");
    }
}
