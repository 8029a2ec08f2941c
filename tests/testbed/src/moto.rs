//! A moto server: AWS APIs (EC2, RDS, …) faked in memory, on a free loopback port.
//!
//! Point an AWS SDK client at [`Moto::endpoint`] with region [`REGION`] and the static
//! credentials [`ACCESS_KEY_ID`]/[`SECRET_ACCESS_KEY`], or hand [`Moto::env`] to a job binary.
//!
//! moto picks the faked service from the credential scope of the `Authorization` header
//! (`…/us-east-1/ec2/aws4_request`); it does not check signatures. A request without that header
//! is answered by the S3 fake, which is why [`Moto::query`] sends a dummy one.
//!
//! Where moto's *effect* differs from AWS's (it ignores a parameter, or does at once what AWS does
//! in minutes), a test can still assert the *call*: [`Moto::start_recording`] turns on moto's own
//! request recorder and [`Moto::recorded`] returns what the server received since.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;

use crate::process::{Error, ManagedProcess, Result, free_port, locate, venv_dir};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// The static access key id moto accepts (it accepts any).
pub const ACCESS_KEY_ID: &str = "testing";

/// The static secret access key moto accepts (it accepts any).
pub const SECRET_ACCESS_KEY: &str = "testing";

/// How long moto may take to answer its first request (under 1 s on our machines).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running moto server, stopped (with its process group) when dropped.
#[derive(Debug)]
pub struct Moto {
    process: ManagedProcess,
    endpoint: String,
    http: reqwest::Client,
    /// Where this server's recorder writes (`MOTO_RECORDER_FILEPATH`): one file per server, so
    /// servers running side by side do not share moto's default `./moto_recording`.
    recording: tempfile::TempPath,
}

/// One request moto received while recording (see [`Moto::start_recording`]).
#[derive(Debug, Clone)]
pub struct MotoRequest {
    /// HTTP method.
    pub method: String,
    /// The URL as sent (path and query, percent-encoded).
    pub url: String,
    /// Headers, as moto saw them.
    pub headers: BTreeMap<String, String>,
    /// The body (empty for a streamed body without `Content-Length`).
    pub body: Vec<u8>,
}

impl MotoRequest {
    /// A header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The signing name in the `Authorization` credential scope (`ec2`, `s3`, `eks`, …): the
    /// service the request was for.
    pub fn service(&self) -> Option<&str> {
        let scope = self.header("authorization")?.split("Credential=").nth(1)?;
        scope.split(['/', ',']).nth(3)
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Moto {
    /// Starts `$GOV_VENV/bin/moto_server -H 127.0.0.1 -p PORT` and waits until
    /// `GET /moto-api/` answers 200.
    pub async fn start() -> Result<Moto> {
        let program = locate(
            "moto_server",
            "GOV_VENV",
            venv_dir().join("bin/moto_server"),
        )?;
        let port = free_port()?.to_string();
        let recording = tempfile::Builder::new()
            .prefix("testbed-moto-recording-")
            .suffix(".jsonl")
            .tempfile()
            .map_err(|source| Error::Io {
                service: "moto".into(),
                action: "create the recording file".into(),
                source,
            })?
            .into_temp_path();
        let recording_path = recording.to_string_lossy().into_owned();
        let process = ManagedProcess::spawn(
            "moto",
            &program,
            ["-H", "127.0.0.1", "-p", port.as_str()],
            &[("MOTO_RECORDER_FILEPATH", recording_path.as_str())],
        )?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| Error::Http {
                service: "moto".into(),
                action: "build an HTTP client".into(),
                source,
            })?;
        let probe_url = format!("{endpoint}/moto-api/");
        process
            .wait_until("GET /moto-api/ answers 200", START_TIMEOUT, || {
                let request = http.get(&probe_url).timeout(Duration::from_secs(2)).send();
                async move {
                    let response = request.await.map_err(|e| e.to_string())?;
                    match response.status() {
                        reqwest::StatusCode::OK => Ok(()),
                        status => Err(format!("status {status}")),
                    }
                }
            })
            .await?;
        Ok(Moto {
            process,
            endpoint,
            http,
            recording,
        })
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Environment variables that point an AWS SDK (or a job binary using one) at this server:
    /// endpoint, region, static credentials, and no instance-metadata lookups.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// Clears every faked resource (`POST /moto-api/reset`), for reusing one server across cases.
    pub async fn reset(&self) -> Result<()> {
        self.moto_api("reset").await
    }

    /// Empties the recording and records every request from now on (moto's
    /// `/moto-api/recorder`), until [`stop_recording`](Self::stop_recording).
    pub async fn start_recording(&self) -> Result<()> {
        self.moto_api("recorder/reset-recording").await?;
        self.moto_api("recorder/start-recording").await
    }

    /// Stops recording; what was recorded stays readable with [`recorded`](Self::recorded).
    pub async fn stop_recording(&self) -> Result<()> {
        self.moto_api("recorder/stop-recording").await
    }

    /// Every request recorded since [`start_recording`](Self::start_recording), in arrival order.
    pub fn recorded(&self) -> Result<Vec<MotoRequest>> {
        let action = "read the recording";
        let unexpected = |detail: String| Error::Unexpected {
            service: "moto".into(),
            action: action.into(),
            detail,
        };
        let text = std::fs::read_to_string(&self.recording).map_err(|source| Error::Io {
            service: "moto".into(),
            action: action.into(),
            source,
        })?;
        #[derive(serde::Deserialize)]
        struct Entry {
            method: String,
            url: String,
            headers: BTreeMap<String, String>,
            #[serde(default)]
            body: Option<String>,
            #[serde(default)]
            body_encoded: bool,
        }
        let mut out = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let e: Entry = serde_json::from_str(line)
                .map_err(|e| unexpected(format!("line {}: {e}", n + 1)))?;
            let body = match (e.body, e.body_encoded) {
                (None, _) => Vec::new(),
                (Some(b), false) => b.into_bytes(),
                (Some(b), true) => base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| unexpected(format!("line {}: body: {e}", n + 1)))?,
            };
            out.push(MotoRequest {
                method: e.method,
                url: e.url,
                headers: e.headers,
                body,
            });
        }
        Ok(out)
    }

    /// POSTs to `/moto-api/<path>` and expects a 2xx.
    async fn moto_api(&self, path: &str) -> Result<()> {
        let action = format!("POST /moto-api/{path}");
        let response = self
            .http
            .post(format!("{}/moto-api/{path}", self.endpoint))
            .send()
            .await
            .map_err(|source| self.http_error(&action, source))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::Unexpected {
                service: "moto".into(),
                action,
                detail: format!("status {}", response.status()),
            })
        }
    }

    /// Calls an AWS query-protocol API (EC2, RDS, IAM, …) without an SDK: POSTs the form
    /// `params` (include `Action` and `Version`) for `service` (the signing name, e.g. `ec2`) and
    /// returns the XML body. A non-2xx answer is an error quoting the body.
    pub async fn query(&self, service: &str, params: &[(&str, &str)]) -> Result<String> {
        let action = format!(
            "{service} {}",
            params
                .iter()
                .find(|(k, _)| *k == "Action")
                .map_or("(no Action)", |(_, v)| v)
        );
        // moto routes on this credential scope and ignores the signature.
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20250101/{REGION}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let response = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("Authorization", authorization)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form_encode(params))
            .send()
            .await
            .map_err(|source| self.http_error(&action, source))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|source| self.http_error(&action, source))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(Error::Unexpected {
                service: "moto".into(),
                action,
                detail: format!("status {status}: {body}"),
            })
        }
    }

    /// The underlying process, e.g. for its log.
    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }

    fn http_error(&self, action: &str, source: reqwest::Error) -> Error {
        Error::Http {
            service: "moto".into(),
            action: action.into(),
            source,
        }
    }
}

/// `application/x-www-form-urlencoded` without pulling in reqwest's `form` feature.
fn form_encode(params: &[(&str, &str)]) -> String {
    fn encode(out: &mut String, s: &str) {
        for byte in s.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(char::from(byte));
                }
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (key, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(&mut out, key);
        out.push('=');
        encode(&mut out, value);
    }
    out
}
