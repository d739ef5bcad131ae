//! `steer drill`: the arguments, the progress bar, the report.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use steer_llm::drill::{Counters, Drill, Report, Scenario};

/// Arguments of `steer drill`.
#[derive(clap::Args, Debug)]
pub struct DrillArgs {
    /// A TOML file of deployments and groups (default: a built-in pair of
    /// deployments serving one model; see `steer_llm::drill::BUILT_IN_CONFIG`).
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// The model the requests name, `deployment/model`.
    #[arg(long, conflicts_with = "group")]
    model: Option<String>,
    /// The group the requests name (default: the configuration's first).
    #[arg(long)]
    group: Option<String>,
    /// Scenarios to run, by name, or `all` (the default). Repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<String>,
    /// Requests a scenario (default 120; live, 20, at most 500).
    #[arg(long)]
    requests: Option<u64>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The share of requests that stream, 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    stream_share: f64,
    /// Spread each scenario's requests over this long (`2s`, `1500ms`, `1m`):
    /// the faults' windows are shares of it.
    #[arg(long, value_parser = parse_duration, default_value = "1500ms")]
    duration: Duration,
    /// The seed of the workload and of the faults' draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as JSON (schema: `steer_llm::drill::Report`).
    #[arg(long)]
    json: bool,
    /// Against the configuration's real endpoints (keys from the
    /// environment) instead of the mock: a proxy on 127.0.0.1 in front of the
    /// first target injects only the faults of the scenarios you name; every
    /// request asks for at most 64 tokens.
    #[arg(long, requires = "scenario")]
    live: bool,
    /// Live: the most a scenario may spend, in dollars (a client-wide budget
    /// refuses past it).
    #[arg(long, default_value_t = 0.25, requires = "live")]
    max_usd: f64,
}

/// A duration as the configuration file writes one (`1500ms`, `2s`, `1m30s`,
/// Go's syntax, `classify::wait::go_duration`), or a number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = steer_llm::classify::wait::go_duration(s)
        .or_else(|| s.parse::<u64>().ok().map(Duration::from_secs))
        .ok_or_else(|| format!("{s:?} is not a duration such as 30s, 500ms or 2m"))?;
    if d > steer_llm::drill::MAX_SPREAD {
        let most = steer_llm::drill::MAX_SPREAD.as_secs() / 60;
        return Err(format!("{s:?} is longer than the most, {most}m"));
    }
    Ok(d)
}

fn scenarios(names: &[String]) -> Result<Vec<Scenario>, String> {
    if names.is_empty() || names.iter().any(|n| n.trim() == "all") {
        return Ok(Scenario::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| n.parse::<Scenario>().map_err(|e| e.to_string()))
        .collect()
}

/// Runs the drill; an error if a reply lost or repeated a character.
pub async fn run(args: DrillArgs) -> Result<(), String> {
    if args.live && args.scenario.iter().any(|s| s.trim() == "all") {
        return Err("--live runs only the scenarios you name (not all)".into());
    }
    let scenarios = scenarios(&args.scenario)?;
    let requests = args.requests.unwrap_or(if args.live { 20 } else { 120 });
    let mut drill = match &args.config {
        Some(path) => {
            let config = steer_llm::config::Config::load(path).map_err(|e| e.to_string())?;
            Drill::of(config, &path.display().to_string()).map_err(|e| e.to_string())?
        }
        // Live with no file: the providers of the environment, by --model.
        None if args.live => {
            if args.model.is_none() {
                return Err(
                    "--live needs --config (your deployments) or --model provider/model".into(),
                );
            }
            Drill::of(steer_llm::config::Config::default(), "the environment")
                .map_err(|e| e.to_string())?
        }
        None => Drill::built_in().map_err(|e| e.to_string())?,
    };
    if let Some(m) = &args.model {
        drill = drill.target(m).map_err(|e| e.to_string())?;
    }
    if let Some(g) = &args.group {
        drill = drill
            .target(&format!("group/{g}"))
            .map_err(|e| e.to_string())?;
    }
    let mut drill = drill
        .requests(requests)
        .concurrency(args.concurrency)
        .stream_share(args.stream_share)
        .spread(args.duration)
        .seed(args.seed);
    if args.live {
        drill = drill.live(args.max_usd).map_err(|e| e.to_string())?;
        eprintln!(
            "steer drill: live against {} (at most ${} a scenario)",
            args.config
                .as_ref()
                .map_or("the built-in configuration's endpoints".to_string(), |p| p
                    .display()
                    .to_string()),
            args.max_usd
        );
    }
    let stop = drill.stop_flag();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, Ordering::Relaxed);
        }
    });
    let total = requests.saturating_mul(scenarios.len() as u64);
    let names: Vec<&'static str> = scenarios.iter().map(|s| s.name()).collect();
    let progress = Progress::start(drill.progress(), total, names);
    let report = drill.run(&scenarios).await.map_err(|e| e.to_string());
    progress.finish();
    let report = report?;
    print(&report, args.json)?;
    match report.chars_wrong() {
        0 => Ok(()),
        n => Err(format!(
            "{n} characters lost or repeated across the replies"
        )),
    }
}

fn print(report: &Report, json: bool) -> Result<(), String> {
    if json {
        let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "steer drill: {} against {} (configuration: {}, seed {}){}",
        report
            .scenarios
            .iter()
            .map(|s| s.scenario.name())
            .collect::<Vec<_>>()
            .join(", "),
        report.target,
        report.config,
        report.seed,
        if report.interrupted {
            " - stopped early"
        } else {
            ""
        }
    );
    for s in &report.scenarios {
        println!();
        print!("{s}");
    }
    println!();
    println!(
        "characters lost or repeated, all scenarios: {}",
        report.chars_wrong()
    );
    Ok(())
}

/// The progress bar on a terminal, plain lines elsewhere.
struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn start(live: std::sync::Arc<Counters>, total: u64, names: Vec<&'static str>) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style =
                indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let mut last_line = std::time::Instant::now();
            let mut scenario = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let started = live.scenarios_started.load(Ordering::Relaxed);
                if started != scenario {
                    scenario = started;
                    let name = usize::try_from(started)
                        .ok()
                        .and_then(|n| names.get(n.saturating_sub(1)))
                        .copied()
                        .unwrap_or("-");
                    let line = format!("scenario {started}/{}: {name}", names.len());
                    match &shown {
                        Some(bar) => bar.set_prefix(line),
                        None => eprintln!("steer drill: {line}"),
                    }
                }
                let line = format!(
                    "in flight {}, retries {}, resumptions {}, failovers {}, open breakers {}",
                    live.in_flight.load(Ordering::Relaxed),
                    live.retries.load(Ordering::Relaxed),
                    live.resumptions.load(Ordering::Relaxed),
                    live.failovers.load(Ordering::Relaxed),
                    live.open_breakers.load(Ordering::Relaxed),
                );
                let done = live.done.load(Ordering::Relaxed);
                match &shown {
                    Some(bar) => {
                        bar.set_position(done);
                        bar.set_message(line);
                    }
                    None if last_line.elapsed() >= Duration::from_secs(5) => {
                        last_line = std::time::Instant::now();
                        eprintln!("steer drill: {done} done, {line}");
                    }
                    None => {}
                }
            }
        });
        Progress { task, bar }
    }

    fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
