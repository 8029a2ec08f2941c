//! The `certificate-checker` CronJob binary; all behaviour lives in the library.

fn main() -> std::process::ExitCode {
    common::harness::main::<certificate_checker::CertificateChecker>()
}
