//! The `steer` command: `steer mock` runs the mock provider, `steer chat` sends
//! one request, `steer drill` replays incidents against a configuration.

mod cli;
mod drill;

fn main() -> std::process::ExitCode {
    cli::run()
}
