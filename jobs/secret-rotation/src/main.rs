//! The `secret-rotation` CronJob binary; all behaviour lives in the library.

fn main() -> std::process::ExitCode {
    common::harness::main::<secret_rotation::SecretRotation>()
}
