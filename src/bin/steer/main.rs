//! The `steer` command: `steer mock` runs the mock provider, `steer chat` sends one request.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
