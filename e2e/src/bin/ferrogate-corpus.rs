//! `ferrogate-corpus DIR [--deviations FILE] [--min-pass-rate R] [--verbose]`: runs every case
//! of a translator-cases folder, prints one line per case and `N passed, M failed`, and
//! exits 1 when the pass rate is below the minimum.

use std::path::PathBuf;

use clap::Parser;
use ferrogate_e2e::corpus;

#[derive(Parser)]
struct Args {
    /// Folder of `<case>.in.yaml` / `<case>.expected.yaml` pairs.
    dir: PathBuf,
    /// Cases whose difference is deliberate (case -> justification), counted as passed.
    #[arg(long)]
    deviations: Option<PathBuf>,
    /// Fail when fewer than this fraction of cases pass.
    #[arg(long, default_value_t = 0.97)]
    min_pass_rate: f64,
    /// Print passing cases too.
    #[arg(long)]
    verbose: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let deviations = match &args.deviations {
        Some(path) => corpus::deviations(path)?,
        None => Default::default(),
    };
    let (mut passed, mut failed, mut deviated) = (0usize, 0usize, 0usize);
    let (mut checks, mut failed_checks) = (0usize, 0usize);
    for name in corpus::case_names(&args.dir)? {
        let result = corpus::run_case(&args.dir, &name)?;
        checks += result.checks;
        failed_checks += result.failures.len();
        if result.failures.is_empty() {
            passed += 1;
            if args.verbose {
                println!("{}", corpus::describe(&result, 0));
            }
        } else if let Some(why) = deviations.get(&name) {
            deviated += 1;
            println!(
                "DEVIATION {name}: {}",
                why.lines().next().unwrap_or_default()
            );
        } else {
            failed += 1;
            println!("{}", corpus::describe(&result, 8));
        }
    }
    let total = passed + failed + deviated;
    let rate = if total == 0 {
        0.0
    } else {
        (passed + deviated) as f64 / total as f64
    };
    println!(
        "{} passed, {failed} failed ({deviated} of the passed are listed deviations); {}/{checks} status checks pass; pass rate {:.1}%",
        passed + deviated,
        checks - failed_checks,
        rate * 100.0
    );
    if rate + 1e-9 < args.min_pass_rate {
        anyhow::bail!(
            "pass rate {:.1}% is below the minimum {:.1}%",
            rate * 100.0,
            args.min_pass_rate * 100.0
        );
    }
    Ok(())
}
