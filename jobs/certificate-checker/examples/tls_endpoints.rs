//! Benchmark helper: serves N TLS endpoints (default 500) from one process on loopback ports and
//! writes a `certificate-checker` config naming all of them into DIR, then serves until killed.
//!
//! ```sh
//! cargo run -p certificate-checker --example tls_endpoints -- DIR [N]
//! ```
//!
//! Every tenth endpoint gets its own certificate expiring in 3..90 days, so the run has a mix of
//! severities and distinct certificates; the others share one leaf (deduplicated into one finding
//! with many locations). All chain to one root, which the config trusts.

#[path = "../tests/support/certs.rs"]
mod certs;

use std::fmt::Write as _;
use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: tls_endpoints DIR [N]"))?,
    );
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);

    let root = certs::ca("Bench Root");
    let shared = certs::leaf(&root, "localhost", certs::days_from_now(200));
    let mut yaml = String::from(
        "kafka:\n  fallback: {file: events.jsonl}\njob:\n  roots: {webpki: true, extra_pem_files: [root.pem]}\n  concurrency: 64\n  timeout: 5s\n  endpoints:\n",
    );
    for i in 0..n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (chain, key) = if i % 10 == 0 {
            let days = 3 + (i as i64 * 7) % 88;
            let leaf = certs::leaf(&root, "localhost", certs::days_from_now(days));
            (vec![leaf.der().to_vec()], leaf.key.serialize_der())
        } else {
            (vec![shared.der().to_vec()], shared.key.serialize_der())
        };
        tokio::spawn(certs::serve_on(listener, chain, key));
        writeln!(yaml, "    - {{address: \"{addr}\", sni: localhost}}")?;
    }
    std::fs::write(dir.join("root.pem"), root.cert.pem())?;
    // Written last and renamed into place, so the script can wait for the file.
    std::fs::write(dir.join("config.yaml.tmp"), yaml)?;
    std::fs::rename(dir.join("config.yaml.tmp"), dir.join("config.yaml"))?;
    eprintln!("serving {n} TLS endpoints; config in {}", dir.display());
    std::future::pending::<()>().await;
    Ok(())
}
