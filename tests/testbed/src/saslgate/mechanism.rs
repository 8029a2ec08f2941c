//! The server side of the SASL mechanisms the gate speaks: PLAIN (RFC 4616), SCRAM-SHA-256 and
//! SCRAM-SHA-512 (RFC 5802, 7677: salted, iterated, the password never on the wire, the server
//! proving it knows it too), and OAUTHBEARER (RFC 7628) with either a fixed token or Amazon MSK
//! IAM tokens, whose SigV4 signature is recomputed here from the secret key — an implementation
//! independent of the client's signer.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use sha2::Digest;

/// A SASL mechanism the gate can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mechanism {
    /// `PLAIN`.
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER`.
    OAuthBearer,
}

impl Mechanism {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism named `name`, if the gate knows it.
    pub fn parse(name: &str) -> Option<Mechanism> {
        [
            Mechanism::Plain,
            Mechanism::ScramSha256,
            Mechanism::ScramSha512,
            Mechanism::OAuthBearer,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
    }
}

/// How OAUTHBEARER tokens are checked.
#[derive(Debug, Clone)]
pub enum TokenCheck {
    /// Exactly this token.
    Fixed(String),
    /// Amazon MSK IAM: a presigned `kafka-cluster:Connect` URL for `region`, signed by one of
    /// `keys` (access key id → secret access key), not expired.
    MskIam {
        /// The cluster's region.
        region: String,
        /// Access key ids and their secret keys.
        keys: BTreeMap<String, String>,
    },
}

/// What one step of an exchange leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated as `principal`; send `final_message` (may be empty).
    Done {
        /// The server's last message (SCRAM's server signature).
        final_message: Vec<u8>,
        /// Who authenticated.
        principal: String,
    },
    /// Refused; the message goes to the client, as a broker's does.
    Fail(String),
}

/// One client's authentication in progress.
#[derive(Debug)]
pub enum Exchange {
    /// PLAIN: one message.
    Plain,
    /// SCRAM: waiting for the client-first message.
    ScramFirst(ScramHash),
    /// SCRAM: waiting for the client-final message.
    ScramFinal {
        /// Which hash.
        hash: ScramHash,
        /// Who is logging in.
        user: String,
        /// The user's password (the gate's own test users).
        password: String,
        /// `client-first-message-bare`.
        client_first_bare: String,
        /// `server-first-message`.
        server_first: String,
        /// The full nonce (client's + ours).
        nonce: String,
        /// The salt.
        salt: Vec<u8>,
    },
    /// OAUTHBEARER: one message.
    OAuthBearer,
    /// Finished (either way); any further message is a protocol error.
    Over,
}

/// SCRAM's hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

/// SCRAM's iteration count, Kafka's default and minimum.
pub const SCRAM_ITERATIONS: u32 = 4096;

impl ScramHash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut mac = <hmac::Hmac<sha2::Sha512> as KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with HMAC of this hash, one block.
    fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut block = salt.to_vec();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(password.as_bytes(), &block);
        let mut result = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password.as_bytes(), &u);
            for (r, x) in result.iter_mut().zip(&u) {
                *r ^= x;
            }
        }
        result
    }
}

/// Kafka's message for refused credentials (the wording of its SCRAM server).
fn invalid_credentials(mechanism: &str) -> Step {
    Step::Fail(format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
    ))
}

/// SCRAM's `saslname` decoding: `=2C` is `,` and `=3D` is `=`.
fn scram_name(s: &str) -> String {
    s.replace("=2C", ",").replace("=3D", "=")
}

impl Exchange {
    /// The exchange for `mechanism`.
    pub fn new(mechanism: Mechanism) -> Exchange {
        match mechanism {
            Mechanism::Plain => Exchange::Plain,
            Mechanism::ScramSha256 => Exchange::ScramFirst(ScramHash::Sha256),
            Mechanism::ScramSha512 => Exchange::ScramFirst(ScramHash::Sha512),
            Mechanism::OAuthBearer => Exchange::OAuthBearer,
        }
    }

    /// Feeds the client's next message.
    pub fn step(
        &mut self,
        input: &[u8],
        users: &BTreeMap<String, String>,
        tokens: Option<&TokenCheck>,
        now: SystemTime,
    ) -> Step {
        let state = std::mem::replace(self, Exchange::Over);
        match state {
            Exchange::Plain => plain(input, users),
            Exchange::ScramFirst(hash) => {
                let (step, next) = scram_first(hash, input, users);
                if let Some(next) = next {
                    *self = next;
                }
                step
            }
            Exchange::ScramFinal {
                hash,
                user,
                password,
                client_first_bare,
                server_first,
                nonce,
                salt,
            } => scram_final(
                hash,
                input,
                &user,
                &password,
                &client_first_bare,
                &server_first,
                &nonce,
                &salt,
            ),
            Exchange::OAuthBearer => oauth_bearer(input, tokens, now),
            Exchange::Over => Step::Fail("authentication already finished".into()),
        }
    }
}

fn plain(input: &[u8], users: &BTreeMap<String, String>) -> Step {
    // authzid NUL authcid NUL passwd
    let parts: Vec<&[u8]> = input.split(|b| *b == 0).collect();
    let [authzid, user, password] = parts.as_slice() else {
        return Step::Fail("Invalid SASL/PLAIN message".into());
    };
    let (Ok(authzid), Ok(user), Ok(password)) = (
        std::str::from_utf8(authzid),
        std::str::from_utf8(user),
        std::str::from_utf8(password),
    ) else {
        return Step::Fail("Invalid SASL/PLAIN message".into());
    };
    if !authzid.is_empty() && authzid != user {
        return Step::Fail("Authentication failed: Client requested an authorization id that is different from username".into());
    }
    match users.get(user) {
        Some(expected) if expected.as_bytes() == password.as_bytes() => Step::Done {
            final_message: Vec::new(),
            principal: user.to_string(),
        },
        _ => Step::Fail("Authentication failed: Invalid username or password".into()),
    }
}

fn scram_mechanism(hash: ScramHash) -> &'static str {
    match hash {
        ScramHash::Sha256 => "SCRAM-SHA-256",
        ScramHash::Sha512 => "SCRAM-SHA-512",
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

fn scram_first(
    hash: ScramHash,
    input: &[u8],
    users: &BTreeMap<String, String>,
) -> (Step, Option<Exchange>) {
    let mechanism = scram_mechanism(hash);
    let Ok(message) = std::str::from_utf8(input) else {
        return (
            Step::Fail("Invalid SCRAM client first message".into()),
            None,
        );
    };
    // gs2-header: no channel binding ("n,,"; "y,," = the client could but thinks we cannot).
    let Some(bare) = message
        .strip_prefix("n,,")
        .or_else(|| message.strip_prefix("y,,"))
    else {
        return (
            Step::Fail("Invalid SCRAM client first message: channel binding not supported".into()),
            None,
        );
    };
    let mut user = None;
    let mut client_nonce = None;
    for attribute in bare.split(',') {
        if let Some(v) = attribute.strip_prefix("n=") {
            user = Some(scram_name(v));
        } else if let Some(v) = attribute.strip_prefix("r=") {
            client_nonce = Some(v.to_string());
        }
    }
    let (Some(user), Some(client_nonce)) = (user, client_nonce) else {
        return (
            Step::Fail("Invalid SCRAM client first message: no user or nonce".into()),
            None,
        );
    };
    let Some(password) = users.get(&user) else {
        return (invalid_credentials(mechanism), None);
    };
    let nonce = format!("{client_nonce}{}", URL_SAFE_NO_PAD.encode(random_bytes(18)));
    let salt = random_bytes(16);
    let server_first = format!(
        "r={nonce},s={},i={SCRAM_ITERATIONS}",
        STANDARD.encode(&salt)
    );
    (
        Step::Continue(server_first.clone().into_bytes()),
        Some(Exchange::ScramFinal {
            hash,
            user,
            password: password.clone(),
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
            salt,
        }),
    )
}

#[allow(clippy::too_many_arguments)]
fn scram_final(
    hash: ScramHash,
    input: &[u8],
    user: &str,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
    nonce: &str,
    salt: &[u8],
) -> Step {
    let mechanism = scram_mechanism(hash);
    let Ok(message) = std::str::from_utf8(input) else {
        return Step::Fail("Invalid SCRAM client final message".into());
    };
    let Some((without_proof, proof)) = message.rsplit_once(",p=") else {
        return Step::Fail("Invalid SCRAM client final message: no proof".into());
    };
    let mut channel_binding = None;
    let mut final_nonce = None;
    for attribute in without_proof.split(',') {
        if let Some(v) = attribute.strip_prefix("c=") {
            channel_binding = Some(v);
        } else if let Some(v) = attribute.strip_prefix("r=") {
            final_nonce = Some(v);
        }
    }
    if final_nonce != Some(nonce) {
        return Step::Fail("Invalid SCRAM client final message: nonce mismatch".into());
    }
    if !matches!(channel_binding, Some("biws" | "eSws")) {
        return Step::Fail("Invalid SCRAM client final message: channel binding".into());
    }
    let Ok(proof) = STANDARD.decode(proof) else {
        return Step::Fail("Invalid SCRAM client final message: proof is not base64".into());
    };
    let salted = hash.salted_password(password, salt, SCRAM_ITERATIONS);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.hash(&client_key);
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let client_signature = hash.hmac(&stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return invalid_credentials(mechanism);
    }
    let recovered: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    if hash.hash(&recovered) != stored_key {
        return invalid_credentials(mechanism);
    }
    let server_key = hash.hmac(&salted, b"Server Key");
    let server_signature = hash.hmac(&server_key, auth_message.as_bytes());
    Step::Done {
        final_message: format!("v={}", STANDARD.encode(server_signature)).into_bytes(),
        principal: user.to_string(),
    }
}

fn oauth_bearer(input: &[u8], tokens: Option<&TokenCheck>, now: SystemTime) -> Step {
    let Ok(message) = std::str::from_utf8(input) else {
        return Step::Fail("Invalid OAUTHBEARER client message".into());
    };
    // gs2-header, then key=value pairs separated by \x01, ending in \x01\x01.
    let token = message
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth=Bearer "));
    let Some(token) = token else {
        return Step::Fail("Invalid OAUTHBEARER client message: no auth=Bearer".into());
    };
    match tokens {
        None => Step::Fail("OAUTHBEARER is not configured on this listener".into()),
        Some(TokenCheck::Fixed(expected)) if expected == token => Step::Done {
            final_message: Vec::new(),
            principal: "token".into(),
        },
        Some(TokenCheck::Fixed(_)) => Step::Fail("invalid token: not the expected token".into()),
        Some(TokenCheck::MskIam { region, keys }) => {
            match check_msk_iam_token(token, region, keys, now) {
                Ok(access_key) => Step::Done {
                    final_message: Vec::new(),
                    principal: access_key,
                },
                Err(why) => Step::Fail(format!("invalid token: {why}")),
            }
        }
    }
}

/// SigV4's URI encoding: everything but the unreserved characters.
const SIGV4_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SIGV4_ENCODE).to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac256(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// How far a token's signing time may be ahead of our clock.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Checks an MSK IAM token as far as a broker can without IAM: the URL's shape (host, action,
/// algorithm, signed headers, credential scope), its time window, and the SigV4 signature
/// recomputed with the secret key of its access key id. Returns the access key id.
pub fn check_msk_iam_token(
    token: &str,
    region: &str,
    keys: &BTreeMap<String, String>,
    now: SystemTime,
) -> Result<String, String> {
    let url = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or("not base64url of a url")?;
    let host = format!("kafka.{region}.amazonaws.com");
    let query = url
        .strip_prefix(&format!("https://{host}/?"))
        .ok_or_else(|| format!("not a presigned https://{host}/ url"))?;
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').ok_or("a query parameter without =")?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| "a query parameter is not utf-8".to_string())
        };
        if params.insert(decode(k)?, decode(v)?).is_some() {
            return Err(format!("query parameter {k} given twice"));
        }
    }
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("no {name}"))
    };
    if get("Action")? != "kafka-cluster:Connect" {
        return Err("Action is not kafka-cluster:Connect".into());
    }
    if get("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err("X-Amz-Algorithm is not AWS4-HMAC-SHA256".into());
    }
    if get("X-Amz-SignedHeaders")? != "host" {
        return Err("X-Amz-SignedHeaders is not host".into());
    }
    let date = get("X-Amz-Date")?;
    let signed_at: jiff::Timestamp = jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", date)
        .and_then(|t| t.to_datetime())
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|e| format!("X-Amz-Date {date:?}: {e}"))?;
    let expires: u64 = get("X-Amz-Expires")?
        .parse()
        .map_err(|_| "X-Amz-Expires is not a number")?;
    if expires == 0 || expires > 900 {
        return Err(format!("X-Amz-Expires {expires} is not in 1..=900"));
    }
    let signed_at = SystemTime::from(signed_at);
    if signed_at > now + CLOCK_SKEW {
        return Err("signed in the future".into());
    }
    if now > signed_at + Duration::from_secs(expires) {
        return Err("expired".into());
    }
    let credential = get("X-Amz-Credential")?;
    let scope_parts: Vec<&str> = credential.split('/').collect();
    let [access_key, day, scope_region, service, terminator] = scope_parts.as_slice() else {
        return Err("X-Amz-Credential is not key/date/region/service/aws4_request".into());
    };
    if *day != &date[..8]
        || *scope_region != region
        || *service != "kafka-cluster"
        || *terminator != "aws4_request"
    {
        return Err(format!(
            "credential scope {day}/{scope_region}/{service}/{terminator} is not {}/{region}/kafka-cluster/aws4_request",
            &date[..8]
        ));
    }
    let secret = keys
        .get(*access_key)
        .ok_or_else(|| format!("unknown access key {access_key}"))?;
    let signature = get("X-Amz-Signature")?;
    // The canonical query: every parameter but the signature and the User-Agent (the AWS
    // signers append it after signing), encoded and sorted.
    let mut canonical: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| *k != "X-Amz-Signature" && *k != "User-Agent")
        .map(|(k, v)| (enc(k), enc(v)))
        .collect();
    canonical.sort();
    let canonical_query: Vec<String> = canonical.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let empty_payload = hex(&sha2::Sha256::digest(b""));
    let canonical_request = format!(
        "GET\n/\n{}\nhost:{host}\n\nhost\n{empty_payload}",
        canonical_query.join("&")
    );
    let scope = format!("{day}/{region}/kafka-cluster/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&sha2::Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac256(format!("AWS4{secret}").as_bytes(), day);
    let k_region = hmac256(&k_date, region);
    let k_service = hmac256(&k_region, "kafka-cluster");
    let k_signing = hmac256(&k_service, "aws4_request");
    let expected = hex(&hmac256(&k_signing, &string_to_sign));
    if expected != signature {
        return Err("signature does not match".into());
    }
    Ok((*access_key).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        [("alice".to_string(), "wonderland".to_string())]
            .into_iter()
            .collect()
    }

    #[test]
    fn plain_accepts_the_right_password_only() {
        let now = SystemTime::now();
        let mut ok = Exchange::new(Mechanism::Plain);
        assert_eq!(
            ok.step(b"\0alice\0wonderland", &users(), None, now),
            Step::Done {
                final_message: vec![],
                principal: "alice".into()
            }
        );
        let mut bad = Exchange::new(Mechanism::Plain);
        assert!(matches!(
            bad.step(b"\0alice\0nope", &users(), None, now),
            Step::Fail(m) if m.contains("Invalid username or password")
        ));
    }

    /// The client side of SCRAM, written from RFC 5802 for this test.
    fn scram_client(hash: ScramHash, password: &str, server: &mut Exchange) -> Step {
        let now = SystemTime::now();
        let first_bare = "n=alice,r=clientnonce";
        let Step::Continue(server_first) =
            server.step(format!("n,,{first_bare}").as_bytes(), &users(), None, now)
        else {
            panic!("a challenge")
        };
        let server_first = String::from_utf8(server_first).expect("utf-8");
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0;
        for a in server_first.split(',') {
            if let Some(v) = a.strip_prefix("r=") {
                nonce = v;
            } else if let Some(v) = a.strip_prefix("s=") {
                salt = STANDARD.decode(v).expect("salt");
            } else if let Some(v) = a.strip_prefix("i=") {
                iterations = v.parse().expect("count");
            }
        }
        assert!(nonce.starts_with("clientnonce") && nonce.len() > "clientnonce".len());
        let without_proof = format!("c=biws,r={nonce}");
        let salted = hash.salted_password(password, &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored = hash.hash(&client_key);
        let auth = format!("{first_bare},{server_first},{without_proof}");
        let signature = hash.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        server.step(
            format!("{without_proof},p={}", STANDARD.encode(proof)).as_bytes(),
            &users(),
            None,
            now,
        )
    }

    #[test]
    fn scram_verifies_the_proof_and_proves_itself() {
        for (mechanism, hash) in [
            (Mechanism::ScramSha256, ScramHash::Sha256),
            (Mechanism::ScramSha512, ScramHash::Sha512),
        ] {
            let mut server = Exchange::new(mechanism);
            let Step::Done {
                final_message,
                principal,
            } = scram_client(hash, "wonderland", &mut server)
            else {
                panic!("{mechanism:?}: authenticated")
            };
            assert_eq!(principal, "alice");
            assert!(final_message.starts_with(b"v="));
            let mut server = Exchange::new(mechanism);
            assert!(matches!(
                scram_client(hash, "looking-glass", &mut server),
                Step::Fail(m) if m.contains("invalid credentials")
            ));
        }
    }

    #[test]
    fn rfc_7677_test_vector_salted_password() {
        // RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096;
        // the server signature of its exchange is 6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=.
        let hash = ScramHash::Sha256;
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let salted = hash.salted_password("pencil", &salt, 4096);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_key = hash.hmac(&salted, b"Server Key");
        assert_eq!(
            STANDARD.encode(hash.hmac(&server_key, auth.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn a_fixed_token_is_compared_exactly() {
        let check = TokenCheck::Fixed("t0ken".into());
        let now = SystemTime::now();
        let mut ok = Exchange::new(Mechanism::OAuthBearer);
        assert!(matches!(
            ok.step(
                b"n,,\x01auth=Bearer t0ken\x01\x01",
                &users(),
                Some(&check),
                now
            ),
            Step::Done { .. }
        ));
        let mut bad = Exchange::new(Mechanism::OAuthBearer);
        assert!(matches!(
            bad.step(
                b"n,,\x01auth=Bearer other\x01\x01",
                &users(),
                Some(&check),
                now
            ),
            Step::Fail(_)
        ));
    }
}
