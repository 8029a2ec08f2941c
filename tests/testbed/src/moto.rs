//! A moto server: AWS APIs (EC2, RDS, …) faked in memory, on a free loopback port.
//!
//! Point an AWS SDK client at [`Moto::endpoint`] with region [`REGION`] and the static
//! credentials [`ACCESS_KEY_ID`]/[`SECRET_ACCESS_KEY`], or hand [`Moto::env`] to a job binary.
//!
//! moto picks the faked service from the credential scope of the `Authorization` header
//! (`…/us-east-1/ec2/aws4_request`); it does not check signatures. A request without that header
//! is answered by the S3 fake, which is why [`Moto::query`] sends a dummy one.

use std::time::Duration;

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
        let process = ManagedProcess::spawn(
            "moto",
            &program,
            ["-H", "127.0.0.1", "-p", port.as_str()],
            &[],
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
        let action = "POST /moto-api/reset";
        let response = self
            .http
            .post(format!("{}/moto-api/reset", self.endpoint))
            .send()
            .await
            .map_err(|source| self.http_error(action, source))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::Unexpected {
                service: "moto".into(),
                action: action.into(),
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
